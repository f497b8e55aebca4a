"""Hostile imports against a served instance: memory stays bounded, refusals are clear."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.served import Served, free_port
from tests.support.world import World, bearer, build_world
from transparency.domain.api_keys import new_api_key


def service_memory(served: Served) -> int:
    """Bytes of memory the service's Python processes hold, shared pages counted once (PSS):
    the API process and its worker processes; PostgreSQL is not counted."""
    total = 0
    root = psutil.Process(served.proc.pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            if "postgres" in proc.name():
                continue
            total += proc.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
    return total


class PeakMemory:
    """The highest ``service_memory`` seen while it runs, sampled every 20 ms."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, service_memory(self.served))


async def imported(http: httpx.AsyncClient, world: World, content: bytes) -> dict[str, Any]:
    r = await http.post(
        f"/v1/products/{world.product_a['id']}/serial-imports",
        params={"mode": "accept_valid"},
        content=content,
        headers={**bearer(world.brand_a), "content-type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        batch: dict[str, Any] = (
            await http.get(r.headers["location"], headers=bearer(world.brand_a))
        ).json()
        if batch["status"] in ("done", "failed"):
            return batch
        await asyncio.sleep(0.1)
    raise AssertionError("the import did not finish")


def test_a_file_of_a_million_repeats_leaves_the_services_memory_bounded(tmp_path: Path) -> None:
    """A million rows of one serial once held a million refusals in the reading process and
    again in the API process (2.6 GB and 2.5 GB for five million); now the refusals go to
    the database a piece at a time and the job holds a hundred."""
    admin = str(new_api_key())
    served = Served(
        tmp_path / "data", free_port(), TRANSPARENCY_ADMIN_KEY=admin,
        TRANSPARENCY_LOG_LEVEL="ERROR", TRANSPARENCY_WORKERS="1",
    )  # fmt: skip
    served.wait_ready()

    async def run() -> tuple[int, int, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
            world = await build_world(http, admin)
            await imported(http, world, b"W1\n")  # workers started and stopped once
            before = service_memory(served)
            with PeakMemory(served) as memory:
                batch = await imported(http, world, b"A\n" * 1_000_000)
            return before, memory.peak, batch

    before, peak, batch = asyncio.run(run())
    code, _, err = served.stop()
    assert code == 0, err
    assert batch["status"] == "done", batch
    assert (batch["report"]["accepted"], batch["report"]["rejected"]) == (1, 999_999)
    assert len(batch["report"]["first_rejections"]) == 100
    print(f"service memory: {before / 1e6:.0f} MB before, {peak / 1e6:.0f} MB at most")
    assert peak - before < 200_000_000, (before, peak)
