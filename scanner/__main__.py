"""``scanner`` / ``python -m scanner``.

Decode QR and GS1 DataMatrix codes from images and verify them through the API.

Exit status of ``scanner decode``: 0 when a code was found, 1 when none was found in any
image, 2 when an image could not be read (after the others were processed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scanner import cli
from scanner.scan import DEFAULT_TIME_BUDGET

EXIT_FOUND = 0
EXIT_NOTHING_FOUND = 1
EXIT_UNREADABLE = 2


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="scanner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = root.add_subparsers(dest="command", required=True)
    decode = commands.add_parser("decode", help="print one JSON line per code found in the images")
    decode.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    decode.add_argument(
        "--time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET,
        help="seconds to spend on each image before giving up (default: %(default)s)",
    )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "decode":
        summary = cli.decode_files(
            args.images, out=sys.stdout, err=sys.stderr, time_budget=args.time_budget
        )
        if summary.unreadable:
            return EXIT_UNREADABLE
        return EXIT_FOUND if summary.codes else EXIT_NOTHING_FOUND
    raise AssertionError(f"unhandled command {args.command}")  # argparse refuses others


if __name__ == "__main__":
    sys.exit(main())
