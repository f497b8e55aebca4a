"""A round trip on a connection that otherwise only receives (the notification listener's),
to find it dead when the network dropped it without a word."""

from __future__ import annotations

import asyncpg


async def ping(conn: asyncpg.Connection, within: float) -> None:
    await conn.execute("select 1", timeout=within)
