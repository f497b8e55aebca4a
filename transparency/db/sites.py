"""Queries on warehouse sites and their stations."""

from __future__ import annotations

from uuid import UUID, uuid4

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
