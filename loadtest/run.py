"""``loadtest run``: locust, headless, with ``locust.conf``, in a subprocess.

Locust (gevent) patches the standard library when imported; a subprocess keeps that out
of the caller, and its own summary goes straight to this process's terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loadtest.data import read
from loadtest.errors import RunFailed

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
CONF = HERE / "locust.conf"


def command(users: int | None, spawn_rate: float | None, run_time: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--config", str(CONF)]
    if users is not None:
        cmd += ["--users", str(users)]
        if spawn_rate is None:
            spawn_rate = users  # everyone at once: short runs should not spend them ramping up
    if spawn_rate is not None:
        cmd += ["--spawn-rate", str(spawn_rate)]
    if run_time is not None:
        cmd += ["--run-time", run_time]
    return cmd


def run(
    data: Path,
    *,
    users: int | None = None,
    spawn_rate: float | None = None,
    run_time: str | None = None,
) -> None:
    """Run the load test; raise RunFailed if locust reports failures or cannot run."""
    read(data)  # a bad file is named here, not in a traceback from inside locust
    env = {**os.environ, "LOADTEST_DATA": str(data.resolve())}
    try:
        done = subprocess.run(command(users, spawn_rate, run_time), env=env, check=False)  # noqa: S603
    except OSError as exc:
        raise RunFailed(f"cannot start locust: {exc.strerror}") from exc
    if done.returncode != 0:
        raise RunFailed(f"locust exited with status {done.returncode}: see the failures above")
