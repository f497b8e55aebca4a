"""Queries of the passes a station reads back: its site's pass events under a shipment
prefix, listed in keyset pages and counted, each a range of migration 0023's index."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.passes import Pass, PassCount

# The site's passes in the prefix's range [$2, $3). The "C" collation is the index's, so
# the range is an index range whatever the database's collation. A prefix with nothing
# above it (it ends in U+10FFFF) has no $3: the statements ending in _OPEN.
_UNDER = """
    from scan_events e
    where e.kind = 'fulfilment' and e.result = 'pass' and e.site_id = $1
      and e.shipment_id collate "C" >= $2
"""
_BELOW = ' and e.shipment_id collate "C" < $3'

# After ($4, $5): the last pass of the previous page. No event has the nil id
# (gen_random_uuid sets version bits), so the first page starts after ($2, nil): one
# statement, and one plan, for every page.
_PAGE = """
    and (e.shipment_id collate "C", e.id) > ($4::text collate "C", $5::uuid)
    order by e.shipment_id collate "C", e.id
    limit $6
"""
_LIST_COLUMNS = "select e.id, e.code, e.shipment_id, e.scanned_at as passed_at"
LIST = _LIST_COLUMNS + _UNDER + _BELOW + _PAGE
LIST_OPEN = _LIST_COLUMNS + _UNDER + " and $3::text is null" + _PAGE

_COUNT_COLUMNS = (
    "select count(*) as pass_events, count(distinct e.code) as units,"
    " count(distinct e.shipment_id) as shipments,"
    " count(distinct (e.code, e.shipment_id)) as unit_shipments"
)
COUNT = _COUNT_COLUMNS + _UNDER + _BELOW
COUNT_OPEN = _COUNT_COLUMNS + _UNDER + " and $3::text is null"


async def passes(
    conn: Conn | asyncpg.Pool,
    site_id: UUID,
    low: str,
    high: str | None,
    *,
    after: tuple[str, UUID] | None,
    limit: int,
) -> list[Pass]:
    """The site's passes with a shipment id in [low, high), by shipment then id, after
    ``after`` (the last one of the previous page) when given."""
    key, ident = after if after is not None else (low, UUID(int=0))
    rows = await conn.fetch(
        LIST if high is not None else LIST_OPEN, site_id, low, high, key, ident, limit
    )
    return [Pass(**row) for row in rows]


async def count(conn: Conn | asyncpg.Pool, site_id: UUID, low: str, high: str | None) -> PassCount:
    """Pass events, distinct units and distinct shipments of the site in [low, high)."""
    row = await conn.fetchrow(COUNT if high is not None else COUNT_OPEN, site_id, low, high)
    assert row is not None  # an aggregate answers one row
    return PassCount(**row)
