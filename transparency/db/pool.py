"""The asyncpg pool: created in the app's lifespan, never at import time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import asyncpg.pool


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


@asynccontextmanager
async def open_pool(dsn: str, *, min_size: int, max_size: int) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        # Statements are prepared once per connection (asyncpg's cache); planning the claim,
        # a statement over partitioned tables, costs more than running it, so keep the
        # generic plan. No query here depends on a plan made for its particular values.
        server_settings={"plan_cache_mode": "force_generic_plan"},
    ) as pool:
        yield pool


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the same codecs as the pool's (CLI and fixtures)."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


# What query functions accept: a plain connection or one borrowed from the pool.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
