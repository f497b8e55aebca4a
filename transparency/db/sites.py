"""Queries on warehouse sites and their stations."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from transparency.db.errors import translated
from transparency.db.pool import Conn
from transparency.domain.models import Site


async def insert(
    conn: Conn, site_id: UUID, name: str, region: str | None, stations: list[str]
) -> Site:
    with translated(f"site {name!r}"):
        row = await conn.fetchrow(
            "insert into sites (id, name, region) values ($1, $2, $3)"
            " returning id, name, region, created_at",
            site_id,
            name,
            region,
        )
        await conn.executemany(
            "insert into stations (id, site_id, name) values ($1, $2, $3)",
            [(uuid4(), site_id, s) for s in stations],
        )
    assert row is not None
    return Site(**row, stations=list(stations))


async def get(conn: Conn | asyncpg.Pool, site_id: UUID) -> Site | None:
    """The site ``site_id`` (its stations are not read)."""
    row = await conn.fetchrow(
        "select id, name, region, created_at from sites where id = $1", site_id
    )
    return None if row is None else Site(**row)
