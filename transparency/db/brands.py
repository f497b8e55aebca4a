"""Queries on brands."""

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
