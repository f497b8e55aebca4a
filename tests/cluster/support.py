"""The local cluster of ``deploy/cluster/cluster.py`` as the cluster tests drive it: started
in a directory and on ports of its own, spoken to over HTTP (Patroni's REST API), psql and
its own command line, as an operator would; and the load harness pointed at it."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from loadtest.faults import api_processes
from tests.support import loadtest
from tests.support.paths import ROOT

SCRIPT = ROOT / "deploy" / "cluster" / "cluster.py"
NODES = ("pg1", "pg2", "pg3")
OFFSETS = (1, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43, 50, 80, 81, 82)
PSQL = "/usr/lib/postgresql/15/bin/psql"


def free_base_port() -> int:
    """A base port whose every port the cluster uses is free now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 50000, 100)
        try:
            for offset in OFFSETS:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise AssertionError("no free range of ports for the cluster")


class Cluster:
    def __init__(self, home: Path, base_port: int) -> None:
        self.home = home
        self.base_port = base_port

    def cli(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), "--dir", str(self.home), "--base-port",
             str(self.base_port), *args],
            capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
        )  # fmt: skip

    def command(self, *args: str) -> str:
        """The shell command that runs ``cluster.py args`` (a load run's --fault)."""
        return " ".join([sys.executable, str(SCRIPT), "--dir", str(self.home), *args])

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.home / "state.json").read_text())
        return state

    @property
    def api(self) -> str:
        return str(self.state["api"])

    @property
    def admin_key(self) -> str:
        return str(self.state["admin_key"])

    def rest_port(self, node: str) -> int:
        return int(self.state["ports"]["rest"][NODES.index(node)])

    def pg_port(self, node: str) -> int:
        return int(self.state["ports"]["pg"][NODES.index(node)])

    def members(self) -> dict[str, dict[str, Any]]:
        for node in NODES:
            try:
                resp = httpx.get(f"http://127.0.0.1:{self.rest_port(node)}/cluster", timeout=2)
            except httpx.TransportError:
                continue
            if resp.status_code == 200:
                return {m["name"]: m for m in resp.json().get("members", [])}
        return {}

    def with_role(self, role: str) -> list[str]:
        return sorted(name for name, m in self.members().items() if m.get("role") == role)

    def healthy(self) -> bool:
        found = self.members()
        roles = sorted(m.get("role", "") for m in found.values())
        states = {m.get("state") for m in found.values()}
        return roles == ["leader", "replica", "sync_standby"] and states == {"running"}

    def wait_healthy(self, timeout: float = 120) -> None:
        """A leader, a synchronous standby and a replica, each running (after a fault, the
        old leader rejoins with pg_rewind)."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster did not heal: {self.members()}")
            time.sleep(0.5)

    def psql(self, port: int, sql: str, database: str = "postgres") -> tuple[bool, str]:
        """(ok, output) of SQL run as the superuser on one PostgreSQL (any port)."""
        password = json.loads((self.home / "secrets.json").read_text())["superuser"]
        done = subprocess.run(
            [PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
             str(port), "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=30, check=False,
            env={"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "2"},
        )  # fmt: skip
        return done.returncode == 0, (done.stdout + done.stderr).strip()

    def archive_now(self, timeout: float = 60) -> str:
        """Close the leader's current WAL segment and wait until pgBackRest has archived it:
        everything committed so far can then be restored. The segment's name."""
        write = int(self.state["ports"]["write"])
        ok, segment = self.psql(write, "select pg_walfile_name(pg_switch_wal())")
        assert ok, segment
        deadline = time.monotonic() + timeout
        while True:
            ok, last = self.psql(write, "select coalesce(last_archived_wal, '') "
                                        "from pg_stat_archiver")  # fmt: skip
            # Names sort in WAL order within a timeline (.partial and .history aside).
            if ok and last[:24] >= segment:
                return segment
            assert time.monotonic() < deadline, f"{segment} not archived: last {last}"
            time.sleep(0.2)

    def primaries(self) -> list[str]:
        """The nodes whose PostgreSQL answers now and is not in recovery: it takes writes."""
        found = []
        for node in NODES:
            ok, out = self.psql(self.pg_port(node), "select pg_is_in_recovery()")
            if ok and out == "f":
                found.append(node)
        return found

    def api_processes(self) -> set[int]:
        """The two ``transparency serve`` and the processes that listen on their ports (with
        TRANSPARENCY_WORKERS=1, each ``serve`` itself; worker pools come and go on demand)."""
        pids = {int(self.state["pids"][name]) for name in ("serve1", "serve2")}
        for port in self.state["ports"]["serve"]:
            pids |= {p.pid for p in api_processes(int(port))}
        assert len(pids) >= 2, pids
        return pids

    def serve_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.state["ports"]["serve"]]


def prepare(cluster: Cluster, at: Path, plan: str) -> Path:
    loadtest.prepare(cluster.api, cluster.admin_key, at, plan)
    return at


CLAIMS = ("claim", "tote", "retry")


def first_claim_after(summary: dict[str, Any], at: float) -> float | None:
    """Seconds from ``at`` (in the run's time) to the end of the first second, wholly after
    it, in which a claim succeeded: an upper bound on the outage a station saw (the
    timeline counts answers per second)."""
    for row in sorted(summary["timeline"], key=lambda r: r["t"]):
        answered = row["count"] > sum(row["failures"].values())
        if row["type"] in CLAIMS and row["t"] >= at and answered:
            return round(float(row["t"]) + 1 - at, 3)
    return None
