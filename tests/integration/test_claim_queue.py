"""Single claims that wait for a slot are claimed together (runtime/claims.py), each with
its own answer, shipment and event; a unit held elsewhere delays only its own claim; a
statement that fails fails each of its claims and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.support.world import World, issue_codes
from transparency.db.pool import is_citus, open_pool
from transparency.db.scans import Wanted
from transparency.domain.verification import Claimed, Reason
from transparency.runtime.claims import ClaimQueue


@pytest.fixture
async def queue(dsn: str) -> AsyncIterator[ClaimQueue]:
    """One slot: the first claim goes alone, the others wait for it and go together (on
    plain PostgreSQL; on Citus, as the app builds it, each alone)."""
    async with open_pool(dsn, min_size=1, max_size=2) as pool:
        async with pool.acquire() as conn:
            citus = await is_citus(conn)
        yield ClaimQueue(pool, concurrency=1, together=not citus)


def statements(queue: ClaimQueue, together: int, claims: int) -> int:
    """The statements ``claims`` claims take: ``together`` when claimed together."""
    return together if queue.together else claims


async def fresh(client: httpx.AsyncClient, world: World, n: int) -> list[str]:
    return [row["code"] for row in await issue_codes(client, world, n)]


async def test_claims_waiting_for_a_slot_go_together_each_with_its_own_shipment(
    client: httpx.AsyncClient, world: World, dsn: str, queue: ClaimQueue
) -> None:
    codes = await fresh(client, world, 20)
    gtin, site = world.product_a["gtin"], uuid.UUID(world.site_id)
    answers = await asyncio.gather(*(
        queue.claim(code, gtin, site_id=site, api_key_id=f"k{i}", shipment_id=f"S-{i}")
        for i, code in enumerate(codes)
    ))  # fmt: skip
    assert [a.reason for a in answers] == [None] * 20
    assert all(a.shipped_at is not None and a.shipped_site_id == site for a in answers)
    # the first alone, the 19 that waited for it together
    assert queue.statements == statements(queue, 2, 20)
    conn = await asyncpg.connect(dsn)
    try:
        units = await conn.fetch(
            "select code, state::text, shipment_id from units where code = any($1)", codes
        )
        events = await conn.fetch(
            "select code, result, shipment_id, api_key_id, site_id from scan_events"
            " where code = any($1)",
            codes,
        )
    finally:
        await conn.close()
    shipment = {code: f"S-{i}" for i, code in enumerate(codes)}
    assert {(u["code"], u["state"], u["shipment_id"]) for u in units} == {
        (code, "shipped", shipment[code]) for code in codes
    }
    assert sorted(tuple(e) for e in events) == sorted(
        (code, "pass", shipment[code], f"k{i}", site) for i, code in enumerate(codes)
    )


async def test_two_claims_of_one_code_never_share_a_statement(
    client: httpx.AsyncClient, world: World, queue: ClaimQueue
) -> None:
    first, twice, other = await fresh(client, world, 3)
    gtin, site = world.product_a["gtin"], uuid.UUID(world.site_id)

    def claim(code: str, shipment: str) -> asyncio.Future[Claimed]:
        return asyncio.ensure_future(
            queue.claim(code, gtin, site_id=site, api_key_id="k", shipment_id=shipment)
        )

    answers = await asyncio.gather(
        claim(first, "S-0"), claim(twice, "S-1"), claim(twice, "S-2"), claim(other, "S-3")
    )
    reasons = [a.reason for a in answers]
    if queue.together:  # the first waiting claim of the code goes first, its copy after
        assert reasons == [None, None, Reason.ALREADY_SHIPPED, None]
    else:  # each alone, at once: one of the two passes, whichever locked the unit first
        assert (reasons[0], reasons[3]) == (None, None)
        assert {reasons[1], reasons[2]} == {None, Reason.ALREADY_SHIPPED}
    # alone; the first of the code with the other; its copy
    assert queue.statements == statements(queue, 3, 4)


async def test_a_unit_held_elsewhere_delays_only_its_own_claim(
    client: httpx.AsyncClient, world: World, dsn: str, queue: ClaimQueue
) -> None:
    """A recall of a whole batch holds its units until it commits: the stations claiming
    other units in the same statement are answered meanwhile; the held unit's claim waits
    for it and is then decided, as a claim alone always was."""
    first, held, *others = await fresh(client, world, 5)
    gtin, site = world.product_a["gtin"], uuid.UUID(world.site_id)

    def claim(code: str) -> asyncio.Task[Claimed]:
        return asyncio.create_task(
            queue.claim(code, gtin, site_id=site, api_key_id="k", shipment_id="S-1")
        )

    holder = await asyncpg.connect(dsn)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("select from units where code = $1 for update", held)
        waiting = [claim(first), claim(held), *(claim(code) for code in others)]
        answered = await asyncio.wait_for(asyncio.gather(waiting[0], *waiting[2:]), 30)
        assert [a.reason for a in answered] == [None] * 4
        assert not waiting[1].done()  # still waiting for the holder
        await holder.execute(
            "update units set state = 'recalled' where code = $1", held
        )  # what the recall did with it
        await transaction.commit()
        assert (await waiting[1]).reason is Reason.RECALLED
    finally:
        await holder.close()
    # alone; together, without the held unit; it alone
    assert queue.statements == statements(queue, 3, 5)


async def test_a_failed_statement_fails_each_of_its_claims_and_changes_nothing(
    client: httpx.AsyncClient, world: World, dsn: str, queue: ClaimQueue
) -> None:
    """PostgreSQL refuses a NUL in text (the API refuses it long before; here it breaks
    one claim's statement on purpose): every claim of that statement gets the error, and
    none of its units changed. On Citus, where each claim goes alone, only that claim."""
    first, *together = await fresh(client, world, 4)
    gtin, site = world.product_a["gtin"], uuid.UUID(world.site_id)
    shipments = ["S-0", "S-1", "S-\x00", "S-3"]
    answers = await asyncio.gather(
        *(
            queue.claim(code, gtin, site_id=site, api_key_id="k", shipment_id=shipment)
            for code, shipment in zip([first, *together], shipments, strict=True)
        ),
        return_exceptions=True,
    )
    failed = [isinstance(a, asyncpg.PostgresError) for a in answers]
    passed = [isinstance(a, Claimed) and a.reason is None for a in answers]
    if queue.together:
        assert (failed, passed) == ([False, True, True, True], [True, False, False, False])
    else:
        assert (failed, passed) == ([False, False, True, False], [True, True, False, True])
    conn = await asyncpg.connect(dsn)
    try:
        states = await conn.fetch(
            "select code, state::text from units where code = any($1)", together
        )
        events = await conn.fetch("select code from scan_events where code = any($1)", together)
    finally:
        await conn.close()
    changed = {code for code, state in states if state != "active"}
    assert changed == {e[0] for e in events}  # each unit moved wrote its event, no other
    assert changed == ({together[0], together[2]} if not queue.together else set())


def keyed(queue: ClaimQueue, world: World, code: str, key: str) -> asyncio.Task[Claimed | None]:
    """A claim of ``code`` under Idempotency-Key ``key`` (its request's digest made up)."""
    site = uuid.UUID(world.site_id)
    wanted = Wanted(code, world.product_a["gtin"], site, "k", "S-1", key, key.encode().ljust(32))
    return asyncio.create_task(queue.claim_keyed(wanted))


async def test_claims_under_keys_go_together_each_keeping_its_outcome(
    client: httpx.AsyncClient, world: World, dsn: str, queue: ClaimQueue
) -> None:
    codes = await fresh(client, world, 12)
    answers = await asyncio.gather(*(keyed(queue, world, c, f"K-{i}") for i, c in enumerate(codes)))
    assert [a.reason if a else "taken" for a in answers] == [None] * 12
    assert queue.statements == statements(queue, 2, 12)
    conn = await asyncpg.connect(dsn)
    try:
        kept = await conn.fetch(
            "select idempotency_key, (outcome).shipped_at, (outcome).reason, reply"
            " from fulfilment_replies where api_key_id = 'k'"
        )
    finally:
        await conn.close()
    shipped = {f"K-{i}": a.shipped_at for i, a in enumerate(answers) if a}
    assert {k: at for k, at, _, _ in kept} == shipped
    assert {(reason, reply) for _, _, reason, reply in kept} == {(None, None)}
    # a retry of any of them claims nothing: its key is taken
    assert await keyed(queue, world, codes[3], "K-3") is None


async def test_a_taken_key_among_claims_together_fails_only_its_own(
    client: httpx.AsyncClient, world: World, dsn: str, queue: ClaimQueue
) -> None:
    """A key already taken fails the statement it is in; its claims are then made alone,
    and only the one under the taken key is refused, its unit untouched."""
    first, second, *others = await fresh(client, world, 6)
    assert await keyed(queue, world, first, "TAKEN") is not None  # alone
    tasks = [
        keyed(queue, world, second, "free-0"),  # alone, while the others wait
        *(keyed(queue, world, c, f"free-{i}") for i, c in enumerate(others[:-1], 1)),
        keyed(queue, world, others[-1], "TAKEN"),  # another request under a taken key
    ]
    answers = await asyncio.gather(*tasks)
    assert [a is not None and a.reason is None for a in answers] == [True] * 4 + [False]
    assert answers[-1] is None
    # one alone; alone; the 4 waiting together, failed; each of them alone
    assert queue.statements == statements(queue, 7, 6)
    conn = await asyncpg.connect(dsn)
    try:
        state = await conn.fetchval("select state::text from units where code = $1", others[-1])
        events = await conn.fetchval("select count(*) from scan_events where code = $1", others[-1])
        passed = await conn.fetchval(
            "select count(*) from scan_events where code = any($1) and result = 'pass'",
            [first, second, *others[:-1]],
        )
    finally:
        await conn.close()
    assert (state, events, passed) == ("active", 0, 5)
