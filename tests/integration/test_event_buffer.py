"""The buffer of refused scans: a flush returns once every event added before it is
written, even while the background flush is writing."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from fastapi import FastAPI

from transparency.runtime.events import EventBuffer


async def test_a_flush_waits_for_the_one_in_progress(app: FastAPI, dsn: str) -> None:
    events: EventBuffer = app.state.lifespan_state["events"]
    code = f"TEST-{uuid.uuid4().hex}"
    for _ in range(3):
        events.add(code, "customer", "rejected", "forged")
    background = asyncio.create_task(events.flush())  # as the buffer's loop would
    await asyncio.sleep(0)  # it takes the rows and starts writing them
    await events.flush()
    assert background.done()  # not back before the events taken by the other were written
    conn = await asyncpg.connect(dsn)
    try:
        written = await conn.fetchval("select count(*) from scan_events where code = $1", code)
    finally:
        await conn.close()
    assert written == 3
