"""``codegen`` / ``python -m codegen``: the only place errors become exit codes."""

from __future__ import annotations

import os
import signal
import sys

from codegen.cli import run
from codegen.client import CodegenError


def main(argv: list[str] | None = None) -> int:
    try:
        status = run(argv)
        sys.stdout.flush()  # a reader gone shows here, not in the flush at exit
    except CodegenError as exc:
        print(f"codegen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout's reader left (``codegen parse - < codes | head``): stop quietly, as a Unix
        # tool killed by SIGPIPE does; the interpreter's last flush then goes to /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status


if __name__ == "__main__":
    sys.exit(main())
