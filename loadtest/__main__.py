"""``loadtest`` / ``python -m loadtest``.

Prove fulfilment throughput against a running API with locust:

    loadtest prepare --api http://127.0.0.1:8000 --admin-key KEY --codes 100000 --out data.json
    loadtest run --data data.json --users 20 --run-time 30s
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from loadtest.data import write
from loadtest.errors import LoadTestError
from loadtest.prepare import prepare
from loadtest.run import run


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = root.add_subparsers(dest="command", required=True)

    p = commands.add_parser("prepare", help="make a brand, station key and codes; write DATA")
    p.add_argument("--api", required=True, help="base URL of the API, e.g. http://127.0.0.1:8000")
    p.add_argument(
        "--admin-key",
        default=os.environ.get("TRANSPARENCY_ADMIN_KEY"),
        help="an admin key (default: $TRANSPARENCY_ADMIN_KEY)",
    )
    p.add_argument("--codes", type=int, required=True, help="fresh codes to issue")
    p.add_argument("--out", type=Path, required=True, help="the data file to write")

    r = commands.add_parser("run", help="run locust headless against the prepared data")
    r.add_argument("--data", type=Path, required=True, help="the file `prepare` wrote")
    r.add_argument("--users", type=int, help="concurrent users (default: locust.conf)")
    r.add_argument("--spawn-rate", type=float, help="users started per second (default: all)")
    r.add_argument("--run-time", help="e.g. 30s, 2m (default: locust.conf)")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "prepare":
            if not args.admin_key:
                raise LoadTestError("--admin-key or TRANSPARENCY_ADMIN_KEY is required")
            data = prepare(args.api, args.admin_key, args.codes)
            write(data, args.out)
            print(f"{args.out}: {len(data.codes):,} fresh codes for {data.api}")
        else:
            run(args.data, users=args.users, spawn_rate=args.spawn_rate, run_time=args.run_time)
    except LoadTestError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("loadtest: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
