"""Queries on units: bulk writes with COPY, and batch reads with a server-side cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from uuid import UUID

import asyncpg
import asyncpg.cursor

from transparency.db.pool import Conn

UnitRow = tuple[str, UUID, UUID, UUID, str | None, date | None, str]
COLUMNS = ("code", "brand_id", "product_id", "batch_id", "lot", "expiry", "state")


async def copy(conn: Conn, rows: Sequence[UnitRow]) -> None:
    """Write units with binary COPY (the caller owns the transaction)."""
    await conn.copy_records_to_table("units", records=rows, columns=COLUMNS)


async def existing(conn: Conn, codes: list[str]) -> set[str]:
    rows = await conn.fetch("select code from units where code = any($1::text[])", codes)
    return {r["code"] for r in rows}


async def of_batch(
    conn: Conn, batch_id: UUID, *, prefetch: int = 10_000
) -> AsyncIterator[tuple[str, str | None, date | None]]:
    """Every unit of a batch, streamed (call inside a transaction)."""
    async for row in conn.cursor(
        "select code, lot, expiry from units where batch_id = $1", batch_id, prefetch=prefetch
    ):
        yield row["code"], row["lot"], row["expiry"]


async def batch_cursor(conn: Conn, batch_id: UUID) -> asyncpg.cursor.Cursor[asyncpg.Record]:
    """A cursor over a batch's units, for callers that fetch in chunks (in a transaction)."""
    cursor: asyncpg.cursor.Cursor[asyncpg.Record] = await conn.cursor(
        "select code, lot, expiry from units where batch_id = $1", batch_id
    )
    return cursor


async def next_rows(cursor: asyncpg.cursor.Cursor[asyncpg.Record], n: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await cursor.fetch(n)
    return rows
