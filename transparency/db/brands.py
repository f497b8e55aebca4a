"""Queries on brands and the GS1 company prefixes assigned to them."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from transparency.db.errors import translated
from transparency.db.pool import Conn
from transparency.domain.models import Brand


async def insert(conn: Conn, brand_id: UUID, name: str) -> Brand:
    with translated(f"brand {name!r}"):
        row = await conn.fetchrow(
            "insert into brands (id, name) values ($1, $2) returning id, name, created_at",
            brand_id,
            name,
        )
    assert row is not None
    return Brand(**row)


async def get(conn: Conn | asyncpg.Pool, brand_id: UUID) -> Brand | None:
    row = await conn.fetchrow("select id, name, created_at from brands where id = $1", brand_id)
    return None if row is None else Brand(**row)


async def assign_prefix(conn: Conn, brand_id: UUID, prefix: str) -> bool:
    """Assign the GS1 company prefix ``prefix`` to the brand (in the caller's transaction);
    False when it overlaps a prefix already assigned, to this brand or another."""
    # Two assignments at once could each miss the other's overlap; operators assign rarely,
    # so they take turns (checks and product registrations read on meanwhile).
    await conn.execute("lock table brand_gs1_prefixes in share row exclusive mode")
    with translated(f"brand {brand_id}"):
        status = await conn.execute(
            "insert into brand_gs1_prefixes (prefix, brand_id) select $2::text, $1::uuid"
            " where not exists (select from brand_gs1_prefixes"
            "   where starts_with($2::text, prefix) or starts_with(prefix, $2::text))",
            brand_id,
            prefix,
        )
    return status != "INSERT 0 0"


async def prefixes(conn: Conn | asyncpg.Pool, brand_id: UUID) -> list[str]:
    """The GS1 company prefixes assigned to the brand, in order."""
    rows = await conn.fetch(
        "select prefix from brand_gs1_prefixes where brand_id = $1 order by prefix", brand_id
    )
    return [r["prefix"] for r in rows]
