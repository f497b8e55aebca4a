"""A station reads back the passes recorded at its own site under a shipment prefix: the
evidence a load test checks its invariants against, over HTTP (no database access)."""

from __future__ import annotations

import asyncpg

from transparency.db import passes as db
from transparency.domain import cursors
from transparency.domain.identity import Principal, Role
from transparency.domain.passes import Pass, PassCount, range_of


async def page(
    pool: asyncpg.Pool, actor: Principal, prefix: str, cursor: str | None, limit: int
) -> tuple[list[Pass], str | None]:
    """A page of the caller's site's passes under ``prefix``, by shipment, and the cursor of
    the next page, if any."""
    actor.require(Role.STATION)
    assert actor.site_id is not None  # a station key has its site
    low, high = range_of(prefix)
    after = None if cursor is None else cursors.decode_key(cursor)
    found = await db.passes(pool, actor.site_id, low, high, after=after, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    return found, (cursors.encode_key(found[-1].shipment_id, found[-1].id) if more else None)


async def summary(pool: asyncpg.Pool, actor: Principal, prefix: str) -> PassCount:
    """The counts of the caller's site's passes under ``prefix``."""
    actor.require(Role.STATION)
    assert actor.site_id is not None
    low, high = range_of(prefix)
    return await db.count(pool, actor.site_id, low, high)
