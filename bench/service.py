"""The real service for benchmarks: `transparency serve` as a subprocess on a free port.

Embedded PostgreSQL in the given data directory, a fresh admin key; helpers to make a
brand with a product and to issue codes over HTTP, as a brand would.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx
import psutil

from transparency.domain.api_keys import new_api_key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} while starting")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


class Service:
    def __init__(
        self, data: Path, log: Path | None = None, *, station_port: bool = False, **env_extra: str
    ) -> None:
        """``log``: a file for the service's output (none is kept by default);
        ``station_port``: stations get a port of their own (``self.stations``, else the
        one port)."""
        self.data = data
        self.port = self.stations = free_port()
        if station_port:
            self.stations = free_port()
            env_extra = {"TRANSPARENCY_STATION_PORT": str(self.stations), **env_extra}
        self.admin = str(new_api_key())
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(
            TRANSPARENCY_DATA_DIR=str(data),
            TRANSPARENCY_PORT=str(self.port),
            TRANSPARENCY_ADMIN_KEY=self.admin,
            TRANSPARENCY_LOG_LEVEL="WARNING",
            TRANSPARENCY_MAX_JOBS_PER_BRAND="10",
        )
        env.update(env_extra)
        out: IO[bytes] | int = log.open("ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transparency", "serve"],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
        if not isinstance(out, int):
            out.close()  # the child holds its own copy
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_ready(f"{self.url}/readyz", self.proc, "the service")
        except BaseException:
            self.stop()
            raise

    @property
    def dsn(self) -> str:
        """The embedded PostgreSQL the service uses (its socket lives in the data dir)."""
        return f"postgresql://postgres:@/postgres?host={self.data / 'pg'}"

    def memory_mb(self) -> tuple[float, float, float]:
        """The service's memory now, over `serve`, its API processes and their workers
        (PostgreSQL aside): the PSS summed (each page counted once, shared ones split among
        the processes sharing them, as the kernel charges a service's cgroup), the RSS
        summed (a shared library counted again in each process), and the largest RSS."""
        me = psutil.Process(self.proc.pid)
        pss = rss = largest = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                if "postgres" in process.name():
                    continue
                info = process.memory_full_info()
            except psutil.NoSuchProcess:  # a worker that just ended
                continue
            pss, rss, largest = pss + info.pss, rss + info.rss, max(largest, info.rss)
        return pss / 2**20, rss / 2**20, largest / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)


def new_gtin() -> str:
    body = f"{secrets.randbelow(10**12):012d}"
    digits = [int(c) for c in "0" + body]
    check = (
        10 - sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits))) % 10
    ) % 10
    return "0" + body + str(check)


def setup_brand(http: httpx.Client, admin: str) -> tuple[str, str]:
    gtin = new_gtin()
    r = http.post("/v1/brands", json={"name": f"bench-{uuid.uuid4().hex[:6]}",
                                      "gs1_prefixes": [gtin[1:13]]},
                  headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    brand_key = r.json()["api_key"]["key"]
    r = http.post("/v1/products", json={"gtin": gtin, "name": "bench"},
                  headers={"Authorization": f"Bearer {brand_key}"})  # fmt: skip
    return brand_key, r.json()["id"]


def issue(
    http: httpx.Client,
    key: str,
    product: str,
    count: int,
    sample: Callable[[], None] | None = None,
) -> float:
    """Issue ``count`` codes; the seconds from the request until the batch is done."""
    auth = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    r = http.post(f"/v1/products/{product}/code-batches", json={"count": count}, headers=auth)
    location = r.headers["location"]
    while True:
        batch = http.get(location, headers=auth).json()
        if sample:
            sample()
        if batch["status"] == "done":
            return time.perf_counter() - started
        if batch["status"] == "failed":
            raise SystemExit(f"batch failed: {batch}")
        time.sleep(0.05)
