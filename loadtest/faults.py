"""Faults injected during a run: ``--fault AT:ACTION``.

``AT`` is a time since the run started (``10s``, ``1m``); ``ACTION`` is one of

- ``kill-api``: SIGKILL one API process of a local ``transparency serve`` (the process
  listening on the API's port; ``serve`` replaces it);
- ``restart-postgres``: restart, fast, the PostgreSQL server that local API processes use
  (``pg_ctl restart -m fast`` on the data directory their DATABASE_URL names);
- anything else: a shell command, run as it is (for any deployment: a remote kill, a
  Patroni switchover, a network cut). Its exit status says whether the fault ran.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psutil

from loadtest.errors import ScenarioError
from loadtest.scenario import seconds

BUILT_IN = ("kill-api", "restart-postgres")
COMMAND_SECONDS = 120.0  # a shell command that takes longer is stopped, the fault failed


@dataclass(frozen=True, slots=True)
class Fault:
    at: float
    action: str

    @classmethod
    def parse(cls, text: str) -> Fault:
        at, sep, action = text.partition(":")
        if not sep or not action.strip():
            raise ScenarioError(f"--fault {text!r}: expected AT:ACTION, e.g. 10s:kill-api")
        return cls(seconds(at, f"--fault {text!r}"), action.strip())


@dataclass
class Outcome:
    at: float
    action: str
    done_at: float | None = None
    ok: bool = False
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "action": self.action, "done_at": self.done_at,
                "ok": self.ok, "detail": self.detail}  # fmt: skip


def api_processes(port: int) -> list[psutil.Process]:
    """The processes listening on ``port`` on this machine (a local ``serve``'s API)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            listening = any(
                c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                for c in proc.net_connections(kind="tcp")
            )
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if listening:
            found.append(proc)
    return sorted(found, key=lambda p: p.pid)


def kill_api(port: int) -> str:
    processes = api_processes(port)
    if not processes:
        raise FaultFailed(f"no process listens on port {port} here: kill-api is for a local serve")
    victim = processes[0]
    victim.send_signal(signal.SIGKILL)
    return f"killed pid {victim.pid} ({victim.name()}), one of {len(processes)} listening"


def postgres_data_dir(port: int) -> Path:
    """The data directory of the PostgreSQL the local API processes use."""
    for proc in api_processes(port):
        try:
            url = proc.environ().get("DATABASE_URL", "")
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        parts = urlsplit(url)
        host = parse_qs(parts.query).get("host", [parts.hostname or ""])[0]
        if host.startswith("/"):
            return Path(host)  # the embedded PostgreSQL keeps its socket in its data dir
    raise FaultFailed("no local API process uses a PostgreSQL by socket directory here")


def restart_postgres(port: int) -> str:
    data_dir = postgres_data_dir(port)
    postmaster = _postmaster(data_dir)
    pg_ctl = Path(postmaster.exe()).with_name("pg_ctl")
    # pg_ctl refuses to run as root: run it as the data directory's owner, as PostgreSQL
    # runs. Its server's output goes to a log file: on a pipe, it would hold the pipe open.
    owner = data_dir.stat().st_uid
    done = subprocess.run(  # noqa: S603
        [str(pg_ctl), "-D", str(data_dir), "-l", str(data_dir / "log"), "restart", "-m", "fast",
         "-w", "-t", "60"],
        capture_output=True, text=True, timeout=90, check=False,
        user=owner if os.geteuid() == 0 and owner != 0 else None,
    )  # fmt: skip
    if done.returncode != 0:
        raise FaultFailed(f"pg_ctl restart: {(done.stderr or done.stdout).strip()[:200]}")
    return f"restarted PostgreSQL of {data_dir}"


def _postmaster(data_dir: Path) -> psutil.Process:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        return psutil.Process(pid)
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess) as exc:
        raise FaultFailed(f"no PostgreSQL runs in {data_dir}") from exc


class FaultFailed(Exception):
    """A fault could not be injected; the outcome says why, the run goes on."""


def run_one(fault: Fault, port: int) -> tuple[bool, str]:
    try:
        if fault.action == "kill-api":
            return True, kill_api(port)
        if fault.action == "restart-postgres":
            return True, restart_postgres(port)
        done = subprocess.run(  # noqa: S602 - the operator's own command, as given
            fault.action, shell=True, capture_output=True, text=True,
            timeout=COMMAND_SECONDS, check=False,
        )  # fmt: skip
        output = (done.stdout + done.stderr).strip().replace("\n", " ")[:200]
        return done.returncode == 0, f"exit status {done.returncode}" + (
            f": {output}" if output else ""
        )
    except FaultFailed as exc:
        return False, str(exc)
    except (psutil.Error, OSError, subprocess.SubprocessError) as exc:
        return False, f"{type(exc).__name__}: {exc}"


class Schedule(threading.Thread):
    """Runs each fault at its time after ``t0`` (Unix time), in order, in a thread."""

    def __init__(self, faults: list[Fault], t0: float, port: int) -> None:
        super().__init__(name="loadtest faults", daemon=True)
        self.faults = sorted(faults, key=lambda f: f.at)
        self.t0, self.port = t0, port
        self.outcomes = [Outcome(f.at, f.action) for f in self.faults]
        self.stopped = threading.Event()

    def run(self) -> None:
        for fault, outcome in zip(self.faults, self.outcomes, strict=True):
            if self.stopped.wait(max(0.0, self.t0 + fault.at - time.time())):
                outcome.detail = "not run: the run ended first"
                continue
            outcome.ok, outcome.detail = run_one(fault, self.port)
            outcome.done_at = round(time.time() - self.t0, 3)

    def stop(self) -> None:
        self.stopped.set()
        self.join(COMMAND_SECONDS + 100)
