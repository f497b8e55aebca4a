"""The job runner's lease: a job runs in one process at a time, and resumes if that one dies."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.support.world import new_gtin
from transparency.db import batches
from transparency.db.pool import open_pool
from transparency.runtime.envelope import MasterKey
from transparency.runtime.jobs import JobRunner
from transparency.runtime.keyring import KeyRing

LEASE = 1.2  # renewed every 0.4 s: a pause of this machine up to 0.8 s is tolerated


async def queue_import(conn: asyncpg.Connection) -> uuid.UUID:
    """A pending import job of a new brand's product (straight in the database: no app,
    so no other job runner, is running on it)."""
    brand_id, product_id, batch_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await conn.execute("insert into brands (id, name) values ($1, $2)", brand_id, str(brand_id))
    await conn.execute(
        "insert into products (id, brand_id, gtin, name) values ($1, $2, $3, 'Widget')",
        product_id,
        brand_id,
        new_gtin(),
    )
    await conn.execute(
        "insert into code_batches (id, brand_id, product_id, kind, format, requested)"
        " values ($1, $2, $3, 'import', 'gs1', 1)",
        batch_id,
        brand_id,
        product_id,
    )
    return batch_id


async def test_a_job_longer_than_its_lease_is_never_claimed_twice(dsn: str) -> None:
    started = asyncio.Event()

    async def slow_import(pool: asyncpg.Pool, job: asyncpg.Record, _: JobRunner) -> None:
        started.set()
        await asyncio.sleep(3 * LEASE)  # an import's one long transaction, say
        async with pool.acquire() as conn:
            await batches.finish(conn, job["id"], job["lease_token"])

    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        keyring = KeyRing(MasterKey.from_text(MasterKey.generate_text()))
        runner = JobRunner(
            pool, keyring, chunk_size=100, lease_seconds=LEASE, import_handler=slow_import
        )
        running = asyncio.create_task(runner.run_one())
        await started.wait()  # claimed by this runner
        claims = []
        while not running.done():  # another process's runner, looking for work all along
            claims.append(await batches.claim(pool, LEASE))
            await asyncio.sleep(LEASE / 6)
        assert running.result() is True
        assert len(claims) > 10
        assert [c for c in claims if c is not None] == []
        async with pool.acquire() as conn:
            status = await conn.fetchval("select status from code_batches where id = $1", batch_id)
        assert status == "done"


async def test_the_job_of_a_runner_that_died_is_taken_over(dsn: str) -> None:
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        first = await batches.claim(pool, LEASE)  # claimed, then its holder dies: no renewal
        assert first is not None
        assert first["id"] == batch_id
        assert await batches.claim(pool, LEASE) is None
        await asyncio.sleep(LEASE * 1.5)
        again = await batches.claim(pool, LEASE)
        assert again is not None
        assert again["id"] == batch_id


async def test_a_holder_whose_lease_ran_out_writes_nothing(dsn: str) -> None:
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        late = await batches.claim(pool, 0.1)  # then paused past its lease
        assert late is not None
        await asyncio.sleep(0.3)
        taker = await batches.claim(pool, 60)
        assert taker is not None
        assert taker["id"] == batch_id
        assert taker["lease_token"] != late["lease_token"]
        async with pool.acquire() as conn:

            async def late_chunk() -> None:  # its writes, then its progress, in one transaction
                async with conn.transaction():
                    await conn.execute("update code_batches set lot = 'L' where id = $1", batch_id)
                    await batches.advance(conn, batch_id, late["lease_token"], 1)

            assert not await batches.renew(conn, batch_id, late["lease_token"], 60)
            with pytest.raises(batches.LeaseLost):
                await late_chunk()
            with pytest.raises(batches.LeaseLost):
                await batches.finish(conn, batch_id, late["lease_token"], {"by": "late"})
            await batches.fail(conn, batch_id, late["lease_token"], "late")
            row = await conn.fetchrow(
                "select status, lot, progress, error from code_batches where id = $1", batch_id
            )
            assert dict(row) == {"status": "running", "lot": None, "progress": 0, "error": None}
            assert await batches.renew(conn, batch_id, taker["lease_token"], 60)
            await batches.finish(conn, batch_id, taker["lease_token"], {"by": "taker"})
            assert (
                await conn.fetchval("select status from code_batches where id = $1", batch_id)
                == "done"
            )


async def test_a_runner_whose_job_was_taken_over_does_not_fail_it(dsn: str) -> None:
    async def taken_over(pool: asyncpg.Pool, job: asyncpg.Record, _: JobRunner) -> None:
        async with pool.acquire() as conn:  # another process claims it meanwhile
            await conn.execute(
                "update code_batches set lease_token = gen_random_uuid() where id = $1", job["id"]
            )
            await batches.finish(conn, job["id"], job["lease_token"])

    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        keyring = KeyRing(MasterKey.from_text(MasterKey.generate_text()))
        runner = JobRunner(pool, keyring, chunk_size=100, import_handler=taken_over)
        assert await runner.run_one()
        status = await pool.fetchval("select status from code_batches where id = $1", batch_id)
        assert status == "running"  # the other process's to finish, not failed by this one
