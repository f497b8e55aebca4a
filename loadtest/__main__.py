"""``loadtest`` / ``python -m loadtest``.

Find a deployment's limit and prove nothing was lost, through its HTTP API only:

    loadtest prepare --api http://127.0.0.1:8000 --admin-key KEY --scenario plan.toml \
        --out data.json
    loadtest run --data data.json --scenario plan.toml
    loadtest compare -2 -1

Each run writes summary.json and a self-contained report.html into its own directory,
appends its figures to a history file, and exits 1 when an SLO or an invariant broke.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from loadtest import history, summary
from loadtest.data import write
from loadtest.errors import LoadTestError
from loadtest.faults import Fault
from loadtest.prepare import prepare
from loadtest.run import DEFAULT_WORKERS, Options, run, worker
from loadtest.scenario import Scenario, read, seconds, with_plan

HISTORY = Path("loadtest-runs") / "history.jsonl"


def _plan_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--scenario", type=Path, help="a scenario file (TOML; see the README)")
    command.add_argument("--rate", type=float, help="requests per second (replaces the file's)")
    command.add_argument("--duration", help="e.g. 30s, 2m (replaces the file's)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--version", action="version", version="%(prog)s 0.2.0")
    commands = root.add_subparsers(dest="command", required=True)

    p = commands.add_parser("prepare", help="make a brand, station key and codes; write DATA")
    p.add_argument("--api", required=True, help="base URL of the API, e.g. http://127.0.0.1:8000")
    p.add_argument(
        "--admin-key",
        default=os.environ.get("TRANSPARENCY_ADMIN_KEY"),
        help="an admin key (default: $TRANSPARENCY_ADMIN_KEY)",
    )
    p.add_argument("--codes", type=int, help="fresh codes to issue (default: what the plan needs)")
    _plan_options(p)
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                   help="workers of the planned run (default: %(default)s)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="the data file to write")

    r = commands.add_parser("run", help="run the plan with locust's master and workers")
    r.add_argument("--data", type=Path, required=True, help="the file `prepare` wrote")
    _plan_options(r)
    r.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                   help="local locust workers (default: one per core, %(default)s)")  # fmt: skip
    r.add_argument("--remote-workers", type=int, default=0,
                   help="workers on other machines to wait for (`loadtest worker`)")  # fmt: skip
    r.add_argument("--master-bind", default="127.0.0.1",
                   help="the master's address: 0.0.0.0 lets other machines join")  # fmt: skip
    r.add_argument("--master-port", type=int, default=0,
                   help="default: a free one (name one for remote workers)")  # fmt: skip
    r.add_argument("--fault", action="append", default=[], metavar="AT:ACTION",
                   help="e.g. 10s:kill-api, 20s:restart-postgres, '30s:ssh db reboot'")  # fmt: skip
    r.add_argument("--forwarded-for", action="store_true",
                   help="customers name random client addresses (the API must trust this "
                   "machine: TRANSPARENCY_TRUSTED_PROXIES)")  # fmt: skip
    r.add_argument("--out", type=Path, help="the run's directory (default: beside --history)")
    r.add_argument("--history", type=Path, default=HISTORY, help="default: %(default)s")

    w = commands.add_parser("worker", help="join a run's master from another machine")
    w.add_argument("--data", type=Path, required=True, help="a copy of the run's data file")
    w.add_argument("--master-host", required=True)
    w.add_argument("--master-port", type=int, default=5557)

    c = commands.add_parser("compare", help="compare two runs of the history")
    c.add_argument("a", help="a run id, -1 (the last run), -2, ... or a summary.json")
    c.add_argument("b", help="likewise")
    c.add_argument("--history", type=Path, default=HISTORY, help="default: %(default)s")
    return root


def _scenario(args: argparse.Namespace) -> Scenario:
    scenario = read(args.scenario) if args.scenario else Scenario()
    duration = seconds(args.duration, "--duration") if args.duration else None
    return with_plan(scenario, rate=args.rate, duration=duration)


def _prepare(args: argparse.Namespace) -> None:
    if not args.admin_key:
        raise LoadTestError("--admin-key or TRANSPARENCY_ADMIN_KEY is required")
    scenario = _scenario(args)
    needed = scenario.codes_needed(args.workers)
    count = args.codes if args.codes is not None else needed
    data = prepare(args.api, args.admin_key, count)
    write(data, args.out)
    load = scenario.load
    print(f"{args.out}: {len(data.codes):,} fresh codes for {data.api}; the plan "
          f"({load.shape}, {load.planned_duration:g} s) uses up to "
          f"{needed:,} with {args.workers} workers")  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    options = Options(
        workers=args.workers, out=args.out, history=args.history,
        faults=tuple(Fault.parse(f) for f in args.fault), forwarded_for=args.forwarded_for,
        master_bind=args.master_bind, master_port=args.master_port,
        remote_workers=args.remote_workers,
    )  # fmt: skip
    result = run(args.data, _scenario(args), options)
    print_result(result, args.out or args.history.parent / result["run_id"])
    return 0 if result["verdict"] == "pass" else 1


def print_result(result: dict[str, Any], out: Path) -> None:
    print(f"{result['verdict'].upper()}: run {result['run_id']}, {result['shape']}, "
          f"{result['duration_s']:.0f} s, {result['workers']} workers")  # fmt: skip
    for reason in result["reasons"]:
        print(f"  {reason}")
    print(f"  {'request':<14} {'count':>8} {'rate/s':>8} {'p50':>7} {'p95':>7} {'p99':>7} "
          f"{'failed':>7}")  # fmt: skip
    for kind, t in result["totals"].items():
        p = [f"{t[q]:.0f}" if t[q] is not None else "-" for q in ("p50", "p95", "p99")]
        print(f"  {kind:<14} {t['count']:>8} {t['rate']:>8.1f} {p[0]:>7} {p[1]:>7} {p[2]:>7} "
              f"{t['failures']:>7}")  # fmt: skip
    if result["saturation"]:
        s = result["saturation"]
        print(f"  saturation: {s['target_rate']:g}/s asked, {s['achieved_rate']:g}/s achieved")
    if result["outage"]:
        o = result["outage"]
        print(f"  outage: claims failed from {o['start']:g} s to {o['end']:g} s "
              f"({o['failed_claims']} failed, each sent again)")  # fmt: skip
    for i in result["invariants"]:
        print(f"  {'ok ' if i['ok'] else 'BROKEN'} {i['name']}: {i['detail']}")
    limited = summary.rate_limited(result)
    if limited:
        print(f"  {limited}")
    print(f"  report: {out / 'report.html'}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "prepare":
            _prepare(args)
        elif args.command == "run":
            return _run(args)
        elif args.command == "worker":
            return worker(args.data, args.master_host, args.master_port)
        else:
            a, b = history.load(args.history, args.a), history.load(args.history, args.b)
            print(history.compare(a, b))
    except LoadTestError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("loadtest: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `loadtest run ... | head`: stop quietly, as `head`'s writer does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return 0


if __name__ == "__main__":
    sys.exit(main())
