"""``codegen`` / ``python -m codegen``: the only place errors become exit codes."""

from __future__ import annotations

import sys

from codegen.cli import run
from codegen.client import CodegenError


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except CodegenError as exc:
        print(f"codegen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
