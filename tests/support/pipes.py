"""A command whose stdout's reader has already left, as with ``command | head``."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_with_reader_gone(
    argv: list[str], *, stdin: str = "", cwd: Path | None = None
) -> tuple[int, str]:
    """Run ``argv`` with its stdout a pipe whose read end is closed before the command
    writes a byte, so its first write fails (EPIPE) whatever the machine's speed: its
    exit status and stderr."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(stdin, timeout=120)
    return proc.returncode, err
