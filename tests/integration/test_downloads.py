"""Downloads and the pool's bounds: CSV cells never run as formulas, a busy pool or a slow
statement is a 503 problem (never a hang or a 500), and a job's bulk write is exempt."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.support.asgi import make_client
from tests.support.problems import assert_problem
from tests.support.world import World, bearer, build_world, issue_codes
from transparency.api.app import create_app
from transparency.db import imports as db_imports
from transparency.db.pool import Pool, lift_timeouts, open_pool
from transparency.db.units import of_batch
from transparency.domain.errors import DatabaseBusy, RenderersBusy
from transparency.runtime.settings import Settings
from transparency.serve.cli import prepare
from transparency.services.exports import Renders
from transparency.services.spool import Spool

FORMULAS = ["=1+2", "+7", "-3", "@SUM(A1)", "\tX", "\rY"]


async def wait_import(client: httpx.AsyncClient, world: World, location: str) -> dict[str, Any]:
    for _ in range(400):
        batch: dict[str, Any] = (await client.get(location, headers=bearer(world.brand_a))).json()
        if batch["status"] in ("done", "failed"):
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError("import did not finish")


async def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    lots = ["=1+2", "+7", "-3", "L4"]
    content = "serial,lot,expiry\n" + "".join(
        f"S{i},{lot},2027-01-31\n" for i, lot in enumerate(lots)
    )
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/serial-imports",
        content=content.encode(),
        headers={**bearer(world.brand_a), "content-type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch = await wait_import(client, world, r.headers["location"])
    assert batch["report"]["accepted"] == len(lots), batch

    r = await client.get(f"/v1/code-batches/{batch['id']}/codes.csv", headers=bearer(world.brand_a))
    found = sorted(row["lot"] for row in csv.DictReader(io.StringIO(r.text)))
    assert found == sorted(["'=1+2", "'+7", "'-3", "L4"])

    # Whatever a report's cells hold (an imported file's text can reach them), none runs.
    conn = await asyncpg.connect(dsn)
    try:
        await db_imports.record_rejections(
            conn, UUID(batch["id"]), 0, [(cell, cell, cell) for cell in FORMULAS]
        )
    finally:
        await conn.close()
    r = await client.get(
        f"/v1/code-batches/{batch['id']}/rejections.csv", headers=bearer(world.brand_a)
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = ["'" + cell for cell in FORMULAS]
    assert [row["position"] for row in rows] == expected
    assert [row["reason"] for row in rows] == expected
    assert [row["detail"] for row in rows] == expected


@pytest.fixture
async def bounded(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, World]]:
    """An app whose waits on the database are short: 0.3 s for a connection, 0.5 s for a
    statement."""
    update = {
        "pool_min_size": 2,
        "pool_max_size": 2,
        "pool_acquire_timeout_seconds": 0.3,
        "statement_timeout_seconds": 0.5,
    }
    application = create_app(settings.model_copy(update=update))
    _, admin = await prepare(settings)
    assert admin is not None
    async with application.router.lifespan_context(application) as state:
        application.state.lifespan_state = state
        async with make_client(application) as http:
            yield application, http, await build_world(http, admin)


async def test_a_pool_with_no_connection_free_answers_database_busy(
    bounded: tuple[FastAPI, httpx.AsyncClient, World],
) -> None:
    app, client, world = bounded
    pool: asyncpg.Pool = app.state.lifespan_state["pool"]
    held = [await pool.acquire(timeout=5) for _ in range(2)]
    try:
        started = time.monotonic()
        r = await client.get(f"/v1/products/{world.product_a['id']}", headers=bearer(world.brand_a))
        assert time.monotonic() - started < 5  # the bound, not a hang
        assert_problem(r, 503, "/problems/database-busy")
        assert int(r.headers["retry-after"]) >= 1
    finally:
        for conn in held:
            await pool.release(conn)
    r = await client.get(f"/v1/products/{world.product_a['id']}", headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text


async def test_a_statement_past_its_timeout_is_a_problem_and_changes_nothing(
    bounded: tuple[FastAPI, httpx.AsyncClient, World], dsn: str
) -> None:
    _, client, world = bounded
    code = (await issue_codes(client, world, 1))[0]["code"]
    claim = {"scan": code, "gtin": world.product_a["gtin"], "shipment_id": "TRUCK-1"}
    locker = await asyncpg.connect(dsn)
    try:
        async with locker.transaction():  # the unit's row stays locked: the claim waits
            await locker.execute("select 1 from units where code = $1 for update", code)
            r = await client.post(
                "/v1/fulfilment/verifications", json=claim, headers=bearer(world.station)
            )
            assert_problem(r, 503, "/problems/statement-timeout")
            assert "retry-after" in r.headers
    finally:
        await locker.close()
    r = await client.post("/v1/fulfilment/verifications", json=claim, headers=bearer(world.station))
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "pass"  # the cancelled claim left the unit as it was


async def test_acquire_statement_and_idle_transaction_are_bounded_but_a_job_is_exempt(
    dsn: str,
) -> None:
    async with (
        open_pool(
            dsn,
            min_size=1,
            max_size=1,
            acquire_timeout=0.2,
            statement_timeout=0.2,
            idle_in_transaction_timeout=0.3,
        ) as pool,
        pool.acquire() as conn,
    ):
        with pytest.raises(DatabaseBusy):
            await pool.fetchval("select 1")
        with pytest.raises(asyncpg.QueryCanceledError):
            await conn.execute("select pg_sleep(2)")
        async with conn.transaction():
            await lift_timeouts(conn)
            await conn.execute("select pg_sleep(0.5)")  # past both bounds: a job's pace
        assert await conn.fetchval("show statement_timeout") == "200ms"  # undone after
        pid = await conn.fetchval("select pg_backend_pid()")
        tx = conn.transaction()
        await tx.start()
        watcher = await asyncpg.connect(dsn)
        try:
            deadline = time.monotonic() + 30
            while await watcher.fetchval(
                "select count(*) from pg_stat_activity where pid = $1", pid
            ):  # PostgreSQL ends the idle transaction's session
                assert time.monotonic() < deadline, "the idle transaction was never ended"
                await asyncio.sleep(0.05)
        finally:
            await watcher.close()
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await conn.fetchval("select 1")


async def test_a_download_whose_client_stops_reading_is_abandoned_and_holds_nothing(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    rows = await issue_codes(client, world, 2500)
    pool: asyncpg.Pool = app.state.lifespan_state["pool"]
    async with pool.acquire() as conn:
        batch_id = await conn.fetchval(
            "select batch_id from units where code = $1", rows[0]["code"]
        )
    spool = Spool(stall_seconds=0.2)
    await spool.start(pool, lambda conn: of_batch(conn, batch_id, size=1000))
    frames = spool.frames()
    assert len(await anext(frames)) == 1000  # then the client stops reading
    deadline = time.monotonic() + 30
    while not spool.abandoned:
        assert time.monotonic() < deadline, "the stalled download was never abandoned"
        await asyncio.sleep(0.05)
    assert isinstance(pool, Pool)
    assert not pool.bulk_slots.locked()  # its read is over: no connection held for it
    with pytest.raises(ConnectionAbortedError):
        await anext(frames)


async def test_label_renderers_past_the_limit_answer_renderers_busy() -> None:
    renders = Renders(1, wait_seconds=0.1)
    give_back = await renders.take()
    with pytest.raises(RenderersBusy):
        await renders.take()
    give_back()
    give_back()  # a second give-back (stall, then end) frees nothing more
    again = await renders.take()
    with pytest.raises(RenderersBusy):
        await renders.take()
    again()
