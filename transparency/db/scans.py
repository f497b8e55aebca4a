"""Queries of verification: claims at fulfilment, customer scans, reversals, returns.

A claim is one statement: it locks the unit row (waiting for a concurrent claim of the
same code to finish, then seeing its result), decides, updates the unit when it passes and
appends the scan event, atomically and in one round trip for any number of codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db.brands import BRAND_FACE, brand_face_of
from transparency.db.pool import Conn, is_citus
from transparency.domain.batches import BatchStatus
from transparency.domain.errors import DatabaseBusy
from transparency.domain.lifecycle import UnitState
from transparency.domain.units import ScanEvent, Unit
from transparency.domain.verification import (
    BLOCKING_STATES,
    Channel,
    Claimed,
    CustomerScan,
    Reason,
    ScanHistory,
    StoredReply,
)

# The columns of a buffered scan event, in order; PostgreSQL gives each its id.
# A batch's units count once it is done; the literal comes from the domain's enum.
_DONE = BatchStatus.DONE.value

EVENT_COLUMNS = (
    "code", "scanned_at", "kind", "result", "reason", "brand_id", "product_id",
    "site_id", "api_key_id", "shipment_id", "region",
)  # fmt: skip

# On Citus (deploy/citus.md) the claims and the customer check run as functions of the
# unit's code (0029_unit_functions.sql) that the coordinator hands to the node holding the
# code (0030_citus.sql): a statement writing units and scan_events from one CTE was split
# into steps through the coordinator. Plain PostgreSQL runs the statements below, as
# before: the functions' PL/pgSQL cost 10% more a claim (0.48 against 0.43 ms).
#
# The decision both claim statements make about a unit ``d`` (null: it passes), as the
# claim function does (tests/integration/test_citus_rules.py holds the three alike).
# The blocking states come from the domain's table as constants: nothing from a caller
# reaches this text; ``gtin`` names the SQL expression of the product being shipped.
_BLOCKING_CASE = (
    "case d.state "
    + " ".join(f"when '{s.value}' then '{r.value}'" for s, r in BLOCKING_STATES.items())
    + " end"
)


def _reason(gtin: str, site: str = "$3", shipment: str = "$4") -> str:
    return f"""case
            when d.code is null then 'unknown'
            when d.gtin <> {gtin} then 'wrong_product'
            when d.state = 'active' then null
            when d.state = 'shipped' and d.shipment_id = {shipment}
                 and d.shipped_site_id = {site} then null
            else {_BLOCKING_CASE}
        end"""


# What a claim of many codes answers for one it did not decide: its unit was locked by
# another transaction, and the statement skipped it rather than wait (see claim_each).
BUSY = "busy"


# A claim's answer ``a`` as kept with its Idempotency-Key: the columns of ``Claimed``, in its
# order (0031_claim_outcomes.sql), read back by ``_claimed`` as the answer itself is.
_OUTCOME = (
    "row(a.reason, a.state, a.gtin, a.name, a.lot, a.expiry, a.product_id, a.brand_id,"
    " a.shipped_at, a.shipped_site_id)::claim_outcome"
)


def _claims(*, skip_locked: bool) -> str:
    """The claim of many codes, each with its own GTIN, site, shipment and station key.

    ``skip_locked``: a unit another transaction holds is not waited for; its item answers
    BUSY, has no event and changes nothing, so the caller claims it on its own. And each
    item may come under an Idempotency-Key ($6, request SHA-256 $7; null: none), whose row
    is inserted with its outcome as _CLAIM_ONE_KEYED does: a key taken fails the whole
    statement. The keys go in last, in order, after every unit is locked (so two such
    statements never wait for each other in a circle)."""
    lock = "for update skip locked" if skip_locked else "for update"
    reason = _reason("item.gtin", site="item.site_id", shipment="item.shipment")
    if skip_locked:
        reason = f"""case
            when d.code is null and not exists (select from locked where locked.code = item.code)
                 and exists (select from units where units.code = item.code) then '{BUSY}'
            else {reason}
        end"""
    keys, key_columns, kept = "", "", ""
    if skip_locked:
        keys, key_columns = ", $6::text[], $7::bytea[]", " idempotency_key, request_sha256,"
        kept = f""",
kept as (
    insert into fulfilment_replies (api_key_id, idempotency_key, request_sha256, outcome)
    select item.api_key_id, item.idempotency_key, item.request_sha256,
           {_OUTCOME}
    from answer a join item on item.n = a.n
    where item.idempotency_key is not null and a.reason is distinct from '{BUSY}'
    order by item.api_key_id, item.idempotency_key
)"""
    return f"""
with item as (
    select * from unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[]{keys})
        with ordinality as i(code, gtin, site_id, shipment, api_key_id,{key_columns} n)
),
locked as (
    -- One locked look-up per code, pruned to its partition (see units.EXISTING), taken in
    -- code order whatever the order of the items: two totes sharing units in other orders
    -- would otherwise each hold a unit the other waits for (a deadlock).
    select u.* from (select code from unnest($1::text[]) as c(code) order by code) as want
    cross join lateral (select * from units where units.code = want.code {lock}) as u
),
u as (
    select u.code, u.state, u.shipped_at, u.shipped_site_id, u.shipment_id, u.brand_id,
           u.product_id, u.lot, u.expiry, p.gtin, p.name
    from locked u
    join products p on p.id = u.product_id
    join code_batches b on b.id = u.batch_id and b.status = '{_DONE}'
),
decision as (
    select item.n, item.code as item_code, item.site_id as item_site,
           item.shipment as item_shipment, item.api_key_id as item_key, d.*,
           {reason} as reason
    from item left join u as d on d.code = item.code
),
upd as (
    update units set state = 'shipped', shipped_at = now(), shipped_site_id = d.item_site,
                     shipment_id = d.item_shipment, updated_at = now(),
                     scans_since_shipping = 0
    from decision d
    where units.code = d.code and d.reason is null and d.state = 'active'
    returning units.code, units.shipped_at
),
ev as (
    insert into scan_events (code, kind, result, reason, brand_id, product_id, site_id,
                             api_key_id, shipment_id)
    select d.item_code, 'fulfilment',
           case when d.reason is null then 'pass' else 'fail' end,
           d.reason, d.brand_id, d.product_id, d.item_site, d.item_key, d.item_shipment
    from decision d
    where d.reason is distinct from '{BUSY}'
),
answer as (
    select d.reason, d.state::text as state, d.gtin, d.name, d.lot, d.expiry, d.product_id,
           d.brand_id, coalesce(upd.shipped_at, d.shipped_at) as shipped_at,
           case when upd.code is not null then d.item_site else d.shipped_site_id end
               as shipped_site_id,
           d.n
    from decision d left join upd on upd.code = d.code
){kept}
select reason, state, gtin, name, lot, expiry, product_id, brand_id, shipped_at,
       shipped_site_id
from answer
order by n
"""


# A tote: its codes wait for any unit another transaction holds, and are claimed together
# or not at all. Single claims claimed together (runtime.claims) skip such units instead.
_CLAIM = _claims(skip_locked=False)
_CLAIM_EACH = _claims(skip_locked=True)


# A tote on Citus: one call of the claim function per code, in code order (as _CLAIM
# locks), answered in the items' order; one statement, so all or nothing. Each code's
# statements run on its unit's node, and the nodes commit together (two-phase).
_CLAIM_CITUS = """
select c.* from (
    select * from unnest($1::text[], $2::text[]) with ordinality as i(code, gtin, n)
    order by code
) as i
cross join lateral claim_unit(i.code, i.gtin, $3, $4, $5) as c
order by i.n
"""


# By value, for a tote's thousand rows: a dict look-up costs a fifth of calling the enum.
_REASONS: dict[str | None, Reason | None] = {None: None, **{r.value: r for r in Reason}}
_STATES: dict[str | None, UnitState | None] = {None: None, **{s.value: s for s in UnitState}}


def _claimed(row: asyncpg.Record) -> Claimed:
    """Every claim statement answers the columns of ``Claimed``, in its order."""
    return Claimed(
        _REASONS[row[0]], _STATES[row[1]],
        row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
    )  # fmt: skip


async def claim(
    conn: Conn | asyncpg.Pool,
    items: Sequence[tuple[str, str]],
    *,
    site_id: UUID,
    api_key_id: str,
    shipment_id: str,
) -> list[Claimed]:
    """Claim (unit key, GTIN) pairs for a shipment: one answer per item, in order."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as held:
            return await claim(
                held, items, site_id=site_id, api_key_id=api_key_id, shipment_id=shipment_id
            )
    codes, gtins = [code for code, _ in items], [gtin for _, gtin in items]
    if await is_citus(conn):
        rows = await conn.fetch(_CLAIM_CITUS, codes, gtins, site_id, shipment_id, api_key_id)
    else:
        n = len(items)
        rows = await conn.fetch(
            _CLAIM, codes, gtins, [site_id] * n, [shipment_id] * n, [api_key_id] * n
        )
    return [_claimed(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Wanted:
    """One station's claim of one unit key, among others' claimed in the same statement;
    under an Idempotency-Key when ``idempotency_key`` (with its request's SHA-256)."""

    code: str
    gtin: str
    site_id: UUID
    api_key_id: str
    shipment_id: str
    idempotency_key: str | None = None
    request_sha256: bytes | None = None


async def claim_each(conn: Conn | asyncpg.Pool, wanted: Sequence[Wanted]) -> list[Claimed | None]:
    """Claim units for several stations' requests in one statement (the codes distinct): one
    answer per item, in order; None for an item this statement did not decide and did not
    touch (claim it alone: ``claim_one``, or ``claim_one_keyed`` under its key): its unit
    was held by another transaction, which the statement did not wait for; or, for every
    item, an Idempotency-Key among them was taken, which failed the statement whole. Plain
    PostgreSQL only: on Citus, runtime.claims sends each single claim alone."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as held:
            return await claim_each(held, wanted)
    try:
        rows = await conn.fetch(
            _CLAIM_EACH,
            [w.code for w in wanted],
            [w.gtin for w in wanted],
            [w.site_id for w in wanted],
            [w.shipment_id for w in wanted],
            [w.api_key_id for w in wanted],
            [w.idempotency_key for w in wanted],
            [w.request_sha256 for w in wanted],
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != _KEYS:
            raise
        return [None] * len(wanted)
    return [None if row[0] == BUSY else _claimed(row) for row in rows]


# The primary key of fulfilment_replies: an Idempotency-Key of a station key, taken.
_KEYS = "fulfilment_replies_pkey"


# One code: the station's everyday request. The same decisions as _CLAIM, with scalar
# parameters and no unnest/ordinality joins, which PostgreSQL runs in about half the time.
_CLAIM_ONE_STEPS = f"""
u as (
    select u.code, u.state, u.shipped_at, u.shipped_site_id, u.shipment_id, u.brand_id,
           u.product_id, u.lot, u.expiry, p.gtin, p.name
    from units u
    join products p on p.id = u.product_id
    join code_batches b on b.id = u.batch_id
    where u.code = $1 and b.status = '{_DONE}'
    for update of u
),
decision as (
    select d.*, {_reason("$2")} as reason
    from (select) as one left join u as d on true
),
upd as (
    update units set state = 'shipped', shipped_at = now(), shipped_site_id = $3,
                     shipment_id = $4, updated_at = now(), scans_since_shipping = 0
    where units.code = $1
      and exists (select from decision where reason is null and state = 'active')
    returning units.shipped_at
),
ev as (
    insert into scan_events (code, kind, result, reason, brand_id, product_id, site_id,
                             api_key_id, shipment_id)
    select $1, 'fulfilment',
           case when d.reason is null then 'pass' else 'fail' end,
           d.reason, d.brand_id, d.product_id, $3, $5, $4
    from decision d
)"""
_CLAIM_ONE_ANSWER = """
select d.reason, d.state::text as state, d.gtin, d.name, d.lot, d.expiry, d.product_id,
       d.brand_id, coalesce(upd.shipped_at, d.shipped_at) as shipped_at,
       case when upd.shipped_at is not null then $3 else d.shipped_site_id end
           as shipped_site_id
from decision d left join upd on true
"""
_CLAIM_ONE = f"with {_CLAIM_ONE_STEPS}{_CLAIM_ONE_ANSWER}"

# One code under an Idempotency-Key ($6, request SHA-256 $7): the claim, and the key's row
# inserted with its outcome. The insert comes last and has no ON CONFLICT: a key already
# held (committed, or by a statement that commits while this one waits on it) fails the
# whole statement with a unique violation, taking the claim, its event and its lock back
# with it. So the claim that holds a key is the one that made it, whatever the timing.
_CLAIM_ONE_KEYED = f"""
with {_CLAIM_ONE_STEPS},
answer as ({_CLAIM_ONE_ANSWER}),
kept as (
    insert into fulfilment_replies (api_key_id, idempotency_key, request_sha256, outcome)
    select $5, $6, $7, {_OUTCOME} from answer a
)
select * from answer
"""


# Citus: the function (0029) that makes the same decisions, handed to the unit's node.
_CLAIM_ONE_CITUS = "select * from claim_unit($1, $2, $3, $4, $5)"


async def claim_one(
    conn: Conn | asyncpg.Pool,
    code: str,
    gtin: str,
    *,
    site_id: UUID,
    api_key_id: str,
    shipment_id: str,
) -> Claimed:
    """Claim one unit key for a shipment: the answer ``claim`` would give for it."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as held:
            return await claim_one(
                held, code, gtin, site_id=site_id, api_key_id=api_key_id, shipment_id=shipment_id
            )
    row: asyncpg.Record | None = await conn.fetchrow(
        _CLAIM_ONE_CITUS if await is_citus(conn) else _CLAIM_ONE,
        code,
        gtin,
        site_id,
        shipment_id,
        api_key_id,
    )
    assert row is not None  # the statement answers one row, found or not
    return _claimed(row)


async def claim_one_keyed(pool: asyncpg.Pool, wanted: Wanted) -> Claimed | None:
    """Claim one unit key under an Idempotency-Key not held yet, keeping the outcome with
    the key, all or nothing; None, with nothing changed, when the key is held (answered, or
    being answered). Not in the caller's transaction: it is one of its own."""
    w = wanted
    assert w.idempotency_key is not None, "a claim without a key is claim_one's"
    claim = (w.code, w.gtin, w.site_id, w.shipment_id, w.api_key_id)
    key = (w.idempotency_key, w.request_sha256)
    async with pool.acquire() as conn:
        if await is_citus(conn):
            return await _claim_one_keyed_citus(conn, claim, (w.api_key_id, *key))
        try:
            row: asyncpg.Record | None = await conn.fetchrow(_CLAIM_ONE_KEYED, *claim, *key)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != _KEYS:
                raise
            return None
    assert row is not None  # the statement answers one row, found or not
    return _claimed(row)


async def _claim_one_keyed_citus(
    conn: Conn, claim: tuple[Any, ...], key: tuple[Any, ...]
) -> Claimed | None:
    """On Citus the unit's node and the key's are not one: a transaction over both. (Citus
    reports a worker's unique violation without the constraint's name, so the key is taken
    with ON CONFLICT DO NOTHING, which waits for a concurrent taker as the plain insert does.)"""
    transaction = conn.transaction()
    await transaction.start()
    kept = False
    try:
        row = await conn.fetchrow(_CLAIM_ONE_CITUS, *claim)
        assert row is not None  # the function answers one row, found or not
        kept = bool(await conn.fetchval(_KEEP_CITUS, *key, tuple(row)))
    finally:
        await (transaction.commit() if kept else transaction.rollback())
    return _claimed(row) if kept else None


_KEEP_CITUS = (
    "insert into fulfilment_replies (api_key_id, idempotency_key, request_sha256, outcome)"
    " values ($1, $2, $3, $4::claim_outcome) on conflict do nothing returning true"
)

# What holds a key: the request it answered, and its reply or the outcome to build it from
# (both null: a reservation whose request is being answered).
_HELD = "request_sha256, reply, outcome"


def _held(row: asyncpg.Record) -> StoredReply:
    outcome = row["outcome"]
    return StoredReply(row[0], row[1], None if outcome is None else _claimed(outcome))


async def reserve_reply(
    conn: Conn | asyncpg.Pool,
    api_key_id: str,
    key: str,
    request_sha256: bytes,
    stale_seconds: float,
) -> StoredReply | None:
    """Reserve an Idempotency-Key for the request about to be answered: None when it is
    ours now, else what holds it (a reply, or a reservation still being answered).

    A reservation older than ``stale_seconds`` with no reply was left by a process that
    died: the same request takes it over. A key that another request holds stays its."""
    for _ in range(3):  # a reservation released between our two statements: look again
        if await conn.fetchval(
            "insert into fulfilment_replies (api_key_id, idempotency_key, request_sha256, reply)"
            " values ($1, $2, $3, null) on conflict do nothing returning true",
            api_key_id,
            key,
            request_sha256,
        ):
            return None
        # Statements of their own: the insert above may have waited for the row's writer
        # to commit, which its snapshot would not show.
        taken = await conn.fetchval(
            "update fulfilment_replies set reserved_at = now()"
            " where api_key_id = $1 and idempotency_key = $2 and reply is null"
            "   and outcome is null and request_sha256 = $3"
            "   and reserved_at < now() - make_interval(secs => $4)"
            " returning true",
            api_key_id,
            key,
            request_sha256,
            stale_seconds,
        )
        if taken:
            return None
        row = await conn.fetchrow(
            f"select {_HELD} from fulfilment_replies"
            " where api_key_id = $1 and idempotency_key = $2",
            api_key_id,
            key,
        )
        if row is not None:
            return _held(row)
    raise DatabaseBusy("an Idempotency-Key was reserved and released over and over; retry")


async def store_reply(
    conn: Conn | asyncpg.Pool, api_key_id: str, key: str, reply: dict[str, Any]
) -> StoredReply:
    """Answer our reservation of a key; return the reply that stands (ours, or, should our
    reservation have been taken over meanwhile, the one stored first)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "with answered as (update fulfilment_replies set reply = $3"
        "   where api_key_id = $1 and idempotency_key = $2 and reply is null"
        f"    and outcome is null returning {_HELD})"
        f" select {_HELD} from answered union all"
        f" select {_HELD} from fulfilment_replies"
        " where api_key_id = $1 and idempotency_key = $2"
        " limit 1",
        api_key_id,
        key,
        reply,
    )
    assert row is not None  # answered, or answered already
    return _held(row)


async def copy_events(conn: Conn | asyncpg.Pool, rows: Sequence[tuple[Any, ...]]) -> None:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            await c.copy_records_to_table("scan_events", records=rows, columns=EVENT_COLUMNS)
    else:
        await conn.copy_records_to_table("scan_events", records=rows, columns=EVENT_COLUMNS)


# A customer scan bumps the unit's counters (kept by this statement, the claims and
# ``move``) and reads them back: one locked row, whatever the code's history. Counting
# the code's scan_events instead took 270 ms with 500k events on one code, and once the
# generic plan chose a sequential scan, 90 ms for every other code of its partition.
_CUSTOMER = f"""
with u as (
    update units u
    set customer_scans = u.customer_scans + 1,
        -- a set of ISO 3166 codes (validated at the edge): at most 676 entries
        scan_regions = case when $2::text is null or $2::text = any(u.scan_regions)
                            then u.scan_regions else u.scan_regions || $2::text end,
        scans_since_shipping = u.scans_since_shipping + (u.shipped_at is not null)::int
    from code_batches b
    where u.code = $1 and b.id = u.batch_id and b.status = '{_DONE}'
    returning u.code, u.state, u.lot, u.expiry, u.shipped_at, u.suspicious_at, u.brand_id,
              u.product_id, b.attributes, u.customer_scans,
              cardinality(u.scan_regions) as regions, u.scans_since_shipping,
              u.status_reason, u.status_instructions
),
ev as (
    insert into scan_events (code, kind, result, brand_id, product_id, region)
    select $1, 'customer', 'scanned', u.brand_id, u.product_id, $2 from u
)
select u.state::text as state, u.lot, u.expiry, u.shipped_at, u.suspicious_at, p.gtin, p.name,
    p.image_url, {BRAND_FACE},
    -- the facts shown: the batch's (made when, where) over the product's, key by key
    p.attributes || u.attributes as attributes,
    u.customer_scans, u.regions, u.scans_since_shipping as scans_after_shipping,
    p.channel, u.status_reason, u.status_instructions
from u
join products p on p.id = u.product_id
join brands br on br.id = u.brand_id
"""


# Citus: the function (0029) that does the same, handed to the unit's node.
_CUSTOMER_CITUS = "select * from customer_scan($1, $2)"


async def customer_scan(
    conn: Conn | asyncpg.Pool, code: str, region: str | None
) -> CustomerScan | None:
    """Record a customer scan of a registered unit and return its facts and scan counts."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as held:
            return await customer_scan(held, code, region)
    row: asyncpg.Record | None = await conn.fetchrow(
        _CUSTOMER_CITUS if await is_citus(conn) else _CUSTOMER, code, region
    )
    if row is None:
        return None
    return CustomerScan(
        UnitState(row["state"]), row["lot"], row["expiry"], row["shipped_at"],
        row["suspicious_at"], row["gtin"], row["name"], row["image_url"], brand_face_of(row),
        row["attributes"],
        ScanHistory(row["customer_scans"], row["regions"], row["scans_after_shipping"]),
        Channel(row["channel"]), row["status_reason"], row["status_instructions"],
    )  # fmt: skip


async def mark_suspicious(conn: Conn | asyncpg.Pool, code: str) -> None:
    await conn.execute(
        "update units set suspicious_at = now() where code = $1 and suspicious_at is null", code
    )


# The columns of ``Unit``, in its order, for a query naming the units table ``u``.
UNIT_COLUMNS = (
    "u.code, u.brand_id, u.product_id, u.batch_id, u.state::text as state, u.lot, u.expiry,"
    " u.shipped_at, u.shipped_site_id, u.shipment_id, u.suspicious_at, u.status_reason"
)


def unit_of(row: asyncpg.Record) -> Unit:
    return Unit(**{**row, "state": UnitState(row["state"])})


async def unit_for_update(conn: Conn, code: str) -> Unit | None:
    """The unit of a finished batch, locked for the caller's transaction."""
    row = await conn.fetchrow(
        f"select {UNIT_COLUMNS} from units u join code_batches b on b.id = u.batch_id"
        f" where u.code = $1 and b.status = '{_DONE}' for update of u",
        code,
    )
    return None if row is None else unit_of(row)


async def move(
    conn: Conn,
    code: str,
    state: UnitState,
    *,
    kind: str,
    site_id: UUID | None,
    api_key_id: str,
    shipment_id: str | None,
    brand_id: UUID,
    product_id: UUID,
    clear_shipment: bool = False,
) -> None:
    """Set a unit's state and append the scan event that moved it (caller's transaction)."""
    await conn.execute(
        "update units set state = $2::unit_state, updated_at = now(),"
        " scans_since_shipping = case when $3 then 0 else scans_since_shipping end,"
        " shipped_at = case when $3 then null else shipped_at end,"
        " shipped_site_id = case when $3 then null else shipped_site_id end,"
        " shipment_id = case when $3 then null else shipment_id end"
        " where code = $1",
        code,
        state.value,
        clear_shipment,
    )
    await conn.execute(
        "insert into scan_events (code, id, kind, result, brand_id, product_id, site_id,"
        " api_key_id, shipment_id) values ($1, gen_random_uuid(), $2, 'pass', $3, $4, $5, $6, $7)",
        code,
        kind,
        brand_id,
        product_id,
        site_id,
        api_key_id,
        shipment_id,
    )


async def history(conn: Conn | asyncpg.Pool, code: str) -> list[ScanEvent]:
    """Every scan of a code, oldest first."""
    rows = await conn.fetch(
        "select scanned_at, kind, result, reason, site_id, shipment_id, region"
        " from scan_events where code = $1 order by scanned_at, id",
        code,
    )
    return [ScanEvent(**row) for row in rows]
