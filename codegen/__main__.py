"""``codegen`` / ``python -m codegen``.

Issue signed per-unit codes in bulk, register a brand's own GS1 serials, render labels.
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="codegen", description=__doc__)
    root.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    return root


def main(argv: list[str] | None = None) -> int:
    parser().parse_args(argv)
    print("codegen: no subcommand yet; see --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
