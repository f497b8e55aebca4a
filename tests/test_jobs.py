"""The job runner's lease: a job runs in one process at a time, and resumes if that one dies."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.world import new_gtin
from transparency.db import batches
from transparency.db.pool import open_pool
from transparency.envelope import MasterKey
from transparency.jobs import JobRunner
from transparency.keyring import KeyRing

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
            await batches.finish(conn, job["id"])

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
