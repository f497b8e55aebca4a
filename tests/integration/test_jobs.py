"""The job runner: a job runs in one process at a time, resumes if that one dies, and is run
by the handler registered for its kind; the batches' kinds and statuses as the schema holds them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.world import World, bearer, new_gtin
from transparency.db import batches
from transparency.db.pool import Conn, open_pool
from transparency.domain.batches import BatchStatus, Job, JobKind
from transparency.runtime.jobs import JobRunner

LEASE = 1.2  # renewed every 0.4 s: a pause of this machine up to 0.8 s is tolerated


async def queue_import(conn: Conn, kind: JobKind = JobKind.IMPORT) -> uuid.UUID:
    """A pending import job (or one of ``kind``) of a new brand's product (straight in the
    database: no app, so no other job runner, is running on it)."""
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
        " values ($1, $2, $3, $4, 'gs1', 1)",
        batch_id,
        brand_id,
        product_id,
        kind.value,
    )
    return batch_id


async def test_a_job_longer_than_its_lease_is_never_claimed_twice(dsn: str) -> None:
    started = asyncio.Event()

    async def slow_import(runner: JobRunner, job: Job) -> None:
        started.set()
        await asyncio.sleep(3 * LEASE)  # an import's one long transaction, say
        async with runner.pool.acquire() as conn:
            await batches.finish(conn, job.batch.id, job.lease_token)

    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        runner = JobRunner(pool, lease_seconds=LEASE)
        runner.register(JobKind.IMPORT, slow_import)
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
        assert first.batch.id == batch_id
        assert await batches.claim(pool, LEASE) is None
        await asyncio.sleep(LEASE * 1.5)
        again = await batches.claim(pool, LEASE)
        assert again is not None
        assert again.batch.id == batch_id


async def test_a_holder_whose_lease_ran_out_writes_nothing(dsn: str) -> None:
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        late = await batches.claim(pool, 0.1)  # then paused past its lease
        assert late is not None
        await asyncio.sleep(0.3)
        taker = await batches.claim(pool, 60)
        assert taker is not None
        assert taker.batch.id == batch_id
        assert taker.lease_token != late.lease_token
        async with pool.acquire() as conn:

            async def late_chunk() -> None:  # its writes, then its progress, in one transaction
                async with conn.transaction():
                    await conn.execute("update code_batches set lot = 'L' where id = $1", batch_id)
                    await batches.advance(conn, batch_id, late.lease_token, 1)

            assert not await batches.renew(conn, batch_id, late.lease_token, 60)
            with pytest.raises(batches.LeaseLost):
                await late_chunk()
            with pytest.raises(batches.LeaseLost):
                await batches.finish(conn, batch_id, late.lease_token, {"by": "late"})
            await batches.fail(conn, batch_id, late.lease_token, "late")
            row = await conn.fetchrow(
                "select status, lot, progress, error from code_batches where id = $1", batch_id
            )
            assert row is not None
            assert dict(row) == {"status": "running", "lot": None, "progress": 0, "error": None}
            assert await batches.renew(conn, batch_id, taker.lease_token, 60)
            await batches.finish(conn, batch_id, taker.lease_token, {"by": "taker"})
            assert (
                await conn.fetchval("select status from code_batches where id = $1", batch_id)
                == "done"
            )


async def test_a_runner_whose_job_was_taken_over_does_not_fail_it(dsn: str) -> None:
    async def taken_over(runner: JobRunner, job: Job) -> None:
        async with runner.pool.acquire() as conn:  # another process claims it meanwhile
            await conn.execute(  # its token made here: Citus runs no volatile function in
                "update code_batches set lease_token = $2 where id = $1",  # a shared UPDATE
                job.batch.id,
                uuid.uuid4(),
            )
            await batches.finish(conn, job.batch.id, job.lease_token)

    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        runner = JobRunner(pool)
        runner.register(JobKind.IMPORT, taken_over)
        assert await runner.run_one()
        status = await pool.fetchval("select status from code_batches where id = $1", batch_id)
        assert status == "running"  # the other process's to finish, not failed by this one


async def test_a_job_of_a_kind_with_no_handler_fails_and_says_so(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            batch_id = await queue_import(conn)
        runner = JobRunner(pool)
        runner.register(JobKind.ISSUE, _never_called)
        with caplog.at_level(logging.ERROR, logger="transparency.runtime.jobs"):
            assert await runner.run_one()
        row = await pool.fetchrow("select status, error from code_batches where id = $1", batch_id)
        assert row is not None
        assert dict(row) == {"status": "failed", "error": "NoHandler"}
        assert [r.getMessage() for r in caplog.records] == ["job failed"]
        assert "no handler for import jobs" in caplog.text
        assert await runner.run_one() is False  # failed, not left to be claimed again


async def test_a_kind_registered_for_fresh_workers_gets_them_after_each_job(dsn: str) -> None:
    worker_pids: list[tuple[JobKind, int]] = []

    async def note_worker(runner: JobRunner, job: Job) -> None:
        worker_pids.append((job.batch.kind, await runner.cpu(os.getpid)))
        async with runner.pool.acquire() as conn:
            await batches.finish(conn, job.batch.id, job.lease_token)

    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            for kind in (JobKind.ISSUE, JobKind.IMPORT, JobKind.ISSUE):
                await queue_import(conn, kind)
        runner = JobRunner(pool)
        runner.register(JobKind.ISSUE, note_worker)
        runner.register(JobKind.IMPORT, note_worker, fresh_workers_after=True)
        async with runner.running():
            for _ in range(600):
                if len(worker_pids) == 3:
                    break
                await asyncio.sleep(0.05)
    (_, issue), (_, imported), (_, after) = worker_pids
    assert [kind for kind, _ in worker_pids] == [JobKind.ISSUE, JobKind.IMPORT, JobKind.ISSUE]
    assert after not in (issue, imported)  # the import's workers were shut down
    assert os.getpid() not in (issue, imported, after)


async def _never_called(runner: JobRunner, job: Job) -> None:
    raise AssertionError("the handler of another kind ran")


async def test_a_brand_owned_look_up_never_returns_another_brands_batch(dsn: str) -> None:
    async with open_pool(dsn, min_size=1, max_size=2) as pool, pool.acquire() as conn:
        batch_id = await queue_import(conn)
        owner = await conn.fetchval("select brand_id from code_batches where id = $1", batch_id)
        other = await queue_import(conn)
        stranger = await conn.fetchval("select brand_id from code_batches where id = $1", other)
        batch = await batches.get_owned(conn, owner, batch_id)
        assert batch is not None
        assert (batch.id, batch.brand_id, batch.kind) == (batch_id, owner, JobKind.IMPORT)
        assert await batches.get_owned(conn, stranger, batch_id) is None
        assert await batches.get_owned(conn, owner, uuid.uuid4()) is None


async def _check_values(conn: asyncpg.Connection, column: str) -> set[str]:
    """The values the CHECK constraints of code_batches allow in ``column``."""
    definitions = await conn.fetch(
        "select pg_get_constraintdef(oid) as def from pg_constraint"
        " where conrelid = 'code_batches'::regclass and contype = 'c'"
    )
    about = [d["def"] for d in definitions if re.search(rf"\b{column}\b", d["def"])]
    assert len(about) == 1, about
    # PostgreSQL prints `x in (...)` as `(x = ANY (ARRAY['a'::text, 'b'::text]))`.
    assert re.fullmatch(rf"CHECK \(\({column} = ANY \(ARRAY\[.*\]\)\)\)", about[0]), about[0]
    return set(re.findall(r"'([^']*)'::text", about[0]))


async def test_the_schema_allows_exactly_the_domains_kinds_and_statuses(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await _check_values(conn, "kind") == {k.value for k in JobKind}
        assert await _check_values(conn, "status") == {s.value for s in BatchStatus}
    finally:
        await conn.close()


async def queue_more(conn: Conn, like: uuid.UUID) -> uuid.UUID:
    """Another pending job of the brand and product of job ``like``."""
    batch_id = uuid.uuid4()
    await conn.execute(
        "insert into code_batches (id, brand_id, product_id, kind, format, requested)"
        " select $1, brand_id, product_id, kind, format, requested from code_batches"
        " where id = $2",
        batch_id,
        like,
    )
    return batch_id


async def test_a_brands_second_job_never_holds_a_runner_another_brand_waits_for(
    dsn: str,
) -> None:
    """Brand A queues two big batches, then brand B a small one: with A's first running,
    B's starts on the next free runner, not A's second (which runs when A's first ends)."""
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            a_first = await queue_import(conn, JobKind.ISSUE)
            a_second = await queue_more(conn, a_first)
            b_only = await queue_import(conn, JobKind.ISSUE)
        first = await batches.claim(pool, 60)  # one runner
        assert first is not None
        assert first.batch.id == a_first
        second = await batches.claim(pool, 60)  # another runner, while A's first runs
        assert second is not None
        assert second.batch.id == b_only
        assert await batches.claim(pool, 60) is None  # A's second waits for A's first
        async with pool.acquire() as conn:
            await batches.finish(conn, a_first, first.lease_token)
        third = await batches.claim(pool, 60)
        assert third is not None
        assert third.batch.id == a_second


async def test_a_lone_runner_serves_the_brand_served_longest_ago_first(dsn: str) -> None:
    """One runner (one API process): once A's first batch is done, B's batch, queued after
    A's second, runs before it."""
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            a_first = await queue_import(conn, JobKind.ISSUE)
            a_second = await queue_more(conn, a_first)
            b_only = await queue_import(conn, JobKind.ISSUE)
        order = []
        while (job := await batches.claim(pool, 60)) is not None:
            order.append(job.batch.id)
            async with pool.acquire() as conn:
                await batches.finish(conn, job.batch.id, job.lease_token)
        assert order == [a_first, b_only, a_second]


async def test_a_dead_holders_job_is_still_taken_over_under_the_brand_limit(dsn: str) -> None:
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            a_first = await queue_import(conn, JobKind.ISSUE)
            await queue_more(conn, a_first)
        dead = await batches.claim(pool, 0.1)  # its holder dies: the lease runs out
        assert dead is not None
        assert dead.batch.id == a_first
        await asyncio.sleep(0.3)
        again = await batches.claim(pool, 60)  # the brand has no live job: its oldest resumes
        assert again is not None
        assert again.batch.id == a_first


async def batch_when(
    client: httpx.AsyncClient, location: str, key: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        batch: dict[str, Any] = (await client.get(location, headers=bearer(key))).json()
        if ready(batch):
            return batch
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.01)


async def test_a_lone_runner_hands_a_big_batch_over_between_chunks(
    client: httpx.AsyncClient, world: World
) -> None:
    """This app's one runner writes brand A's 100,000 codes a thousand at a time: brand B's
    ten codes, queued meanwhile, are done while A's batch is still under way, and A's batch
    then ends whole, no code lost or written twice."""
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/code-batches",
        json={"count": 100_000},
        headers=bearer(world.brand_a),
    )
    big = r.headers["location"]
    await batch_when(client, big, world.brand_a, lambda b: b["progress"] > 0)
    r = await client.post(
        f"/v1/products/{world.product_b['id']}/code-batches",
        json={"count": 10},
        headers=bearer(world.brand_b),
    )
    await batch_when(client, r.headers["location"], world.brand_b, lambda b: b["status"] == "done")
    meanwhile = (await client.get(big, headers=bearer(world.brand_a))).json()
    assert meanwhile["status"] == "running", meanwhile
    assert meanwhile["progress"] < 100_000

    done = await batch_when(client, big, world.brand_a, lambda b: b["status"] == "done")
    assert done["progress"] == 100_000
    text = (await client.get(f"{big}/codes.csv", headers=bearer(world.brand_a))).text
    codes = [line.split(",")[0] for line in text.splitlines()[1:]]
    assert len(codes) == len(set(codes)) == 100_000


async def test_a_handed_over_job_goes_to_the_back_of_the_brands_turns(dsn: str) -> None:
    async with open_pool(dsn, min_size=1, max_size=4) as pool:
        async with pool.acquire() as conn:
            a_job = await queue_import(conn, JobKind.ISSUE)
        first = await batches.claim(pool, 60)
        assert first is not None
        assert first.batch.id == a_job
        assert not await batches.others_waiting(pool, first.batch.brand_id)
        async with pool.acquire() as conn:
            b_job = await queue_import(conn, JobKind.ISSUE)
        assert await batches.others_waiting(pool, first.batch.brand_id)

        await batches.hand_over(pool, a_job, first.lease_token)
        with pytest.raises(batches.LeaseLost):  # its old holder writes nothing more
            await batches.hand_over(pool, a_job, first.lease_token)
        assert not await batches.renew(pool, a_job, first.lease_token, 60)
        turn = await batches.claim(pool, 60)
        assert turn is not None
        assert turn.batch.id == b_job  # the brand served longest ago (never)
        back = await batches.claim(pool, 60)  # another runner: A has no live job now
        assert back is not None
        assert back.batch.id == a_job
        assert back.lease_token != first.lease_token


async def test_a_runner_woken_as_it_is_stopped_stops(dsn: str) -> None:
    """A wake (a batch queued, the listener's catch-up) arriving in the same turn of the
    event loop as the stop once had the stop swallowed: asyncio.wait_for (Python 3.11)
    returned the wake instead of raising the cancellation, the runner went on polling, and
    the app's shutdown waited for it for ever (a test run hung in a fixture's teardown)."""
    async with open_pool(dsn, min_size=1, max_size=2) as pool:
        for _ in range(5):
            runner = JobRunner(pool, lease_seconds=LEASE)
            async with asyncio.timeout(10), runner.running():
                await asyncio.sleep(0.2)  # idle: waiting for a wake or the next poll
                runner.wake()
                asked = time.monotonic()
            # A swallowed stop ends only when this bound's own cancellation reaches the
            # runner: ten seconds, not an instant.
            assert time.monotonic() - asked < 5
