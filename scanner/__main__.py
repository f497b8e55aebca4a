"""``scanner`` / ``python -m scanner``.

Decode QR and GS1 DataMatrix codes from images and verify them through the API.
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="scanner", description=__doc__)
    root.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    return root


def main(argv: list[str] | None = None) -> int:
    parser().parse_args(argv)
    print("scanner: no subcommand yet; see --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
