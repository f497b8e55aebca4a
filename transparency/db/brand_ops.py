"""Queries of brand operations: withdraw units, read a unit's history, the dashboard."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import asyncpg

from transparency.db.pool import Conn

_SET_STATE = (
    "update units set state = $2::unit_state, status_reason = $3, updated_at = now()"
    " where brand_id = $1 and state = any($4::unit_state[]) and "
)
# One statement per kind of target, each able to use its own index under a generic plan.
_TARGETS = {
    "code": _SET_STATE + "code = $5",
    "batch": _SET_STATE + "batch_id = $5",
    "lot": _SET_STATE + "product_id = $5 and lot = $6",
}


async def set_state(
    conn: Conn,
    *,
    brand_id: UUID,
    new_state: str,
    allowed_from: list[str],
    reason: str,
    code: str | None = None,
    batch_id: UUID | None = None,
    product_id: UUID | None = None,
    lot: str | None = None,
) -> int:
    """Move every unit of the target (a code, a batch, or a product's lot) that the
    lifecycle allows; return how many moved."""
    common = (brand_id, new_state, reason, allowed_from)
    if code is not None:
        result: str = await conn.execute(_TARGETS["code"], *common, code)
    elif batch_id is not None:
        result = await conn.execute(_TARGETS["batch"], *common, batch_id)
    else:
        result = await conn.execute(_TARGETS["lot"], *common, product_id, lot)
    return int(result.split()[-1])


async def unit(conn: Conn | asyncpg.Pool, code: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "select code, brand_id, product_id, batch_id, state::text as state, lot, expiry,"
        " shipped_at, shipped_site_id, shipment_id, suspicious_at, status_reason"
        " from units where code = $1",
        code,
    )
    return row


# Issued: the units a finished batch created. An issuance job counts each chunk into
# ``progress`` in the transaction that writes it; an import's ``progress`` is its file's row
# count, refused rows included, so its units are the ``accepted`` of the report written with
# them (0 when an all-or-nothing import was refused). Both are stored: counting a batch's
# units (up to 10M) per dashboard read would not be.
# Passed: units, not events. A station retrying the same shipment gets its pass back and
# another pass event is written, so distinct codes are counted, once per unit and day (every
# pass falls in the group without a reason, so the count spans the day). A reversal is its
# own kind of event and subtracts nothing: the unit did pass that day.
_DASHBOARD = """
with days as (
    select product_id, (finished_at at time zone 'UTC')::date as day,
           sum(case kind when 'import' then (report->>'accepted')::bigint else progress end)
               as issued,
           0 as passed, null::text as reason, 0 as blocked, 0 as customer_scans,
           0 as suspicious
    from code_batches
    where brand_id = $1 and status = 'done'
      and finished_at >= $2::date and finished_at < $3::date + 1
    group by 1, 2
    union all
    select product_id, (scanned_at at time zone 'UTC')::date, 0,
           count(distinct code) filter (where kind = 'fulfilment' and result = 'pass'),
           case when kind = 'fulfilment' and result = 'fail' then reason end,
           count(*) filter (where kind = 'fulfilment' and result = 'fail'),
           count(*) filter (where kind = 'customer'), 0
    from scan_events
    where brand_id = $1 and scanned_at >= $2::date and scanned_at < $3::date + 1
    group by 1, 2, 5
    union all
    select product_id, (suspicious_at at time zone 'UTC')::date, 0, 0, null, 0, 0, count(*)
    from units
    where brand_id = $1 and suspicious_at >= $2::date and suspicious_at < $3::date + 1
    group by 1, 2
)
select product_id, day, sum(issued)::bigint as issued, sum(passed)::bigint as passed,
       coalesce(jsonb_object_agg(reason, blocked) filter (where reason is not null), '{}')
           as blocked,
       sum(customer_scans)::bigint as customer_scans, sum(suspicious)::bigint as suspicious
from days
group by product_id, day
order by day, product_id
"""


async def dashboard(
    conn: Conn | asyncpg.Pool, brand_id: UUID, first: date, last: date
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(_DASHBOARD, brand_id, first, last)
    return rows
