"""``scanner`` / ``python -m scanner``.

Decode QR and GS1 DataMatrix codes from images and verify them through the API.

Exit status of ``scanner decode`` and ``scanner verify``: 0 when a code was found (and, for
verify, answered), 1 when none was found in any image, 2 when an image could not be read or
the API did not answer (after the other images were processed).

Exit status of ``scanner station``: 0 when every claim it queued has its answer, 1 when
claims are still queued at exit (they are sent at the next start, under the same keys), 2
when it cannot run (no camera, video or folder; the API refused the station's key).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from scanner import cli
from scanner.client import Client
from scanner.errors import ScannerError
from scanner.scan import DEFAULT_TIME_BUDGET
from scanner.station import DEFAULT_DRAIN_TIMEOUT, VIDEO_TIME_BUDGET
from scanner.tracker import DEFAULT_FORGET_AFTER

EXIT_FOUND = 0
EXIT_NOTHING_FOUND = 1
EXIT_UNREADABLE = 2

EXIT_DRAINED = 0
EXIT_QUEUED = 1
EXIT_FAILED = 2


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="scanner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = root.add_subparsers(dest="command", required=True)
    decode = commands.add_parser("decode", help="print one JSON line per code found in the images")
    decode.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    _time_budget(decode, DEFAULT_TIME_BUDGET)

    verify = commands.add_parser(
        "verify", help="verify each code found in the images, as a customer would"
    )
    verify.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    verify.add_argument("--api", required=True, metavar="URL", help="the service's base URL")
    verify.add_argument("--region", metavar="XX", help="the customer's country (ISO 3166)")
    _time_budget(verify, DEFAULT_TIME_BUDGET)

    station = commands.add_parser(
        "station",
        help="claim each unit that passes the camera for a shipment",
        description="Print PASS <code> or FAIL <code> <reason> per unit on stdout, and a "
        "status line on stderr. Claims wait in the --queue file until the API answers them.",
    )
    station.add_argument("--api", required=True, metavar="URL", help="the service's base URL")
    station.add_argument("--key", required=True, help="the station's API key")
    station.add_argument("--gtin", required=True, help="the product being shipped (GTIN-14)")
    station.add_argument("--shipment", required=True, metavar="ID", help="the shipment's id")
    source = station.add_mutually_exclusive_group(required=True)
    source.add_argument("--camera", type=int, metavar="N", help="read camera N (0 is the first)")
    source.add_argument("--video", type=Path, metavar="FILE", help="read a video file")
    source.add_argument(
        "--watch", type=Path, metavar="DIR", help="read each new photo in DIR, in name order"
    )
    station.add_argument(
        "--queue",
        type=Path,
        default=Path("scanner-station.sqlite3"),
        metavar="PATH",
        help="the claim queue's file (default: %(default)s)",
    )
    station.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    station.add_argument(
        "--drain-timeout",
        type=float,
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help="after the video ends, wait this long for answers (default: %(default)s)",
    )
    station.add_argument(
        "--forget-after",
        type=int,
        default=DEFAULT_FORGET_AFTER,
        metavar="N",
        help="a code counts again after N frames without it (default: %(default)s)",
    )
    _time_budget(station, VIDEO_TIME_BUDGET)
    return root


def _time_budget(command: argparse.ArgumentParser, default: float) -> None:
    command.add_argument(
        "--time-budget",
        type=float,
        default=default,
        help="seconds to spend on each image before giving up (default: %(default)s)",
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status = run(args)
        sys.stdout.flush()  # a reader gone shows here, not in the flush at exit
    except ScannerError as exc:
        print(f"scanner: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return reader_gone()
    return status


def reader_gone() -> int:
    """stdout's reader left (``scanner decode ... | head``): stop quietly, as a Unix tool
    killed by SIGPIPE does (Python ignores SIGPIPE, so the write raised instead)."""
    # The interpreter flushes stdout once more at exit: into /dev/null, that flush is quiet.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def run(args: argparse.Namespace) -> int:
    if args.command == "decode":
        summary = cli.decode_files(
            args.images, out=sys.stdout, err=sys.stderr, time_budget=args.time_budget
        )
        if summary.unreadable:
            return EXIT_UNREADABLE
        return EXIT_FOUND if summary.codes else EXIT_NOTHING_FOUND
    if args.command == "verify":
        with Client(args.api) as client:
            verified = cli.verify_files(
                args.images,
                client,
                out=sys.stdout,
                err=sys.stderr,
                region=args.region,
                time_budget=args.time_budget,
            )
        if verified.unreadable or verified.api_errors:
            return EXIT_UNREADABLE
        return EXIT_FOUND if verified.codes else EXIT_NOTHING_FOUND
    if args.command == "station":
        # A service manager stops the station with SIGTERM: the same clean stop as Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
        options = cli.StationOptions(
            gtin=args.gtin,
            shipment_id=args.shipment,
            queue=args.queue,
            time_budget=args.time_budget,
            forget_after=args.forget_after,
            max_frames=args.max_frames,
            drain_timeout=args.drain_timeout,
        )
        with Client(args.api, key=args.key) as client:
            stopped = cli.station(
                client,
                options,
                camera=args.camera,
                video=args.video,
                watch=args.watch,
                out=sys.stdout,
                err=sys.stderr,
            )
        return EXIT_QUEUED if stopped.queued else EXIT_DRAINED
    raise AssertionError(f"unhandled command {args.command}")  # argparse refuses others


if __name__ == "__main__":
    sys.exit(main())
