"""Queries of brand operations: withdraw units, read a unit's history, the dashboard, the
forged scans of the brand's codes.

Every statement here names the brand in its WHERE clause: another brand's unit, batch or
product is never read or touched, and looks exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.db.scans import UNIT_COLUMNS, unit_of
from transparency.domain.batches import BatchStatus, JobKind
from transparency.domain.forgeries import ForgedCount, ForgedScan
from transparency.domain.lifecycle import UnitState
from transparency.domain.models import DashboardDay
from transparency.domain.units import Unit


def _set_state(target: str, units: str) -> str:
    """Move the target's units that the lifecycle allows; say whether the brand has the
    target at all (``found``) and how many units moved."""
    return f"""
with target as ({target}),
moved as (
    update units set state = $2::unit_state, status_reason = $3, status_instructions = $5,
        updated_at = now()
    where brand_id = $1 and state = any($4::unit_state[]) and {units}
    returning 1 as one
)
select exists (select 1 from target) as found, (select count(*) from moved) as moved
"""


# One statement per kind of target, each able to use its own index under a generic plan.
# Every CTE and subquery names a column: Citus passes each on as a result with columns,
# and one of none failed ("a column definition list is required").
_TARGETS = {
    "code": _set_state("select 1 from units where brand_id = $1 and code = $6", "code = $6"),
    "batch": _set_state(
        "select 1 from code_batches where brand_id = $1 and id = $6", "batch_id = $6"
    ),
    "lot": _set_state(
        "select 1 from products where brand_id = $1 and id = $6", "product_id = $6 and lot = $7"
    ),
}


async def set_state(
    conn: Conn,
    *,
    brand_id: UUID,
    new_state: UnitState,
    allowed_from: Collection[UnitState],
    reason: str,
    instructions: str | None = None,
    code: str | None = None,
    batch_id: UUID | None = None,
    product_id: UUID | None = None,
    lot: str | None = None,
) -> int | None:
    """Move every unit of the brand's target (a code, a batch, or a product's lot) that is
    in one of ``allowed_from``, with the reason and instructions customers are shown; how
    many moved, or None when the brand has no such target."""
    common = (brand_id, new_state.value, reason, [s.value for s in allowed_from], instructions)
    if code is not None:
        row = await conn.fetchrow(_TARGETS["code"], *common, code)
    elif batch_id is not None:
        row = await conn.fetchrow(_TARGETS["batch"], *common, batch_id)
    else:
        row = await conn.fetchrow(_TARGETS["lot"], *common, product_id, lot)
    assert row is not None  # the statement answers one row, found or not
    found: bool = row["found"]
    moved: int = row["moved"]
    return moved if found else None


async def owned_unit(conn: Conn | asyncpg.Pool, brand_id: UUID, code: str) -> Unit | None:
    """The brand's unit ``code``; None for a missing one and for another brand's."""
    row = await conn.fetchrow(
        f"select {UNIT_COLUMNS} from units u where u.code = $1 and u.brand_id = $2",
        code,
        brand_id,
    )
    return None if row is None else unit_of(row)


# Issued: the units a finished batch created. An issuance job counts each chunk into
# ``progress`` in the transaction that writes it; an import's ``progress`` is its file's row
# count, refused rows included, so its units are the ``accepted`` of the report written with
# them (0 when an all-or-nothing import was refused). Both are stored: counting a batch's
# units (up to 10M) per dashboard read would not be.
# Passed: units, not events. A station retrying the same shipment gets its pass back and
# another pass event is written, so distinct codes are counted, once per unit and day (every
# pass falls in the group without a reason, so the count spans the day). A reversal is its
# own kind of event and subtracts nothing: the unit did pass that day.
# Forgeries naming the brand's key ids are counted apart (``_FORGED_COUNTS``): they are
# about no unit or product of the brand, so they count in no product's day.
# Reports: a customer's report counts on the day it was sent, with the product of the unit
# it names; one on a forgery (it names a key id of the brand, no unit) with no product.
# ``unit_state`` says whether the report named a unit: a forgery's text, kept as scanned,
# is never joined to a unit that happens to have the same key.
_DASHBOARD = f"""
with days as (
    select product_id, (finished_at at time zone 'UTC')::date as day,
           sum(case kind when '{JobKind.IMPORT.value}'
                   then (report->>'accepted')::bigint else progress end) as issued,
           0 as passed, null::text as reason, 0 as blocked, 0 as customer_scans,
           0 as suspicious, 0 as reports
    from code_batches
    where brand_id = $1 and status = '{BatchStatus.DONE.value}'
      and finished_at >= $2::date and finished_at < $3::date + 1
    group by 1, 2
    union all
    select product_id, (scanned_at at time zone 'UTC')::date, 0,
           count(distinct code) filter (where kind = 'fulfilment' and result = 'pass'),
           case when kind = 'fulfilment' and result = 'fail' then reason end,
           count(*) filter (where kind = 'fulfilment' and result = 'fail'),
           count(*) filter (where kind = 'customer'), 0, 0
    from scan_events
    where brand_id = $1 and scanned_at >= $2::date and scanned_at < $3::date + 1
      and reason is distinct from 'forged'
    group by 1, 2, 5
    union all
    select product_id, (suspicious_at at time zone 'UTC')::date, 0, 0, null, 0, 0, count(*), 0
    from units
    where brand_id = $1 and suspicious_at >= $2::date and suspicious_at < $3::date + 1
    group by 1, 2
    union all
    select u.product_id, (r.created_at at time zone 'UTC')::date, 0, 0, null, 0, 0, 0, count(*)
    from customer_reports r
    left join units u on r.unit_state is not null and u.code = r.code and u.brand_id = $1
    where r.brand_id = $1 and r.created_at >= $2::date and r.created_at < $3::date + 1
    group by 1, 2
)
select days.product_id, p.name as product_name, day, sum(issued)::bigint as issued,
       sum(passed)::bigint as passed,
       coalesce(jsonb_object_agg(reason, blocked) filter (where reason is not null), '{{}}')
           as blocked,
       sum(customer_scans)::bigint as customer_scans, sum(suspicious)::bigint as suspicious,
       sum(reports)::bigint as reports
from days
left join products p on p.id = days.product_id and p.brand_id = $1
group by days.product_id, p.name, day
order by day, days.product_id
"""


async def dashboard(
    conn: Conn | asyncpg.Pool, brand_id: UUID, first: date, last: date
) -> list[DashboardDay]:
    """The brand's days from ``first`` to ``last`` (UTC), one per product and day."""
    rows = await conn.fetch(_DASHBOARD, brand_id, first, last)
    return [DashboardDay(**row) for row in rows]


# A fulfilment forgery's region is its site's; a customer's is the one the client gave.
_FORGED_COUNTS = """
select (e.scanned_at at time zone 'UTC')::date as day, e.kind, e.site_id, s.name as site_name,
       coalesce(e.region, s.region) as region, count(*) as scans
from scan_events e
left join sites s on s.id = e.site_id
where e.brand_id = $1 and e.reason = 'forged'
  and e.scanned_at >= $2::date and e.scanned_at < $3::date + 1
group by 1, 2, 3, 4, 5
order by 1, 2, 4 nulls first, 5 nulls first, 3
"""


async def forged_counts(
    conn: Conn | asyncpg.Pool, brand_id: UUID, first: date, last: date
) -> list[ForgedCount]:
    """Forged scans of the brand's codes from ``first`` to ``last`` (UTC), per day, kind,
    site and region."""
    rows = await conn.fetch(_FORGED_COUNTS, brand_id, first, last)
    return [ForgedCount(**row) for row in rows]


_FORGED_COLUMNS = (
    "e.id, e.scanned_at, e.code as scanned, e.kind, e.site_id,"
    " coalesce(e.region, s.region) as region"
    " from scan_events e left join sites s on s.id = e.site_id"
    " where e.brand_id = $1 and e.reason = 'forged' and e.scanned_at >= $2"
)


async def forged_scans(
    conn: Conn | asyncpg.Pool,
    brand_id: UUID,
    *,
    since: datetime,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[ForgedScan]:
    """The brand's forged scans since ``since``, newest first, older than ``before`` (the
    last one of the previous page) when given."""
    if before is None:
        rows = await conn.fetch(
            f"select {_FORGED_COLUMNS} order by e.scanned_at desc, e.id desc limit $3",
            brand_id,
            since,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"select {_FORGED_COLUMNS} and (e.scanned_at, e.id) < ($3, $4)"
            " order by e.scanned_at desc, e.id desc limit $5",
            brand_id,
            since,
            before[0],
            before[1],
            limit,
        )
    return [ForgedScan(**row) for row in rows]
