"""The asyncpg pool: created in the app's lifespan, never at import time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import asyncpg.pool


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(_: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing beyond asyncpg's own
    rollback of an unfinished transaction.

    asyncpg's default reset sends one more statement per release (unlock advisory locks,
    CLOSE ALL, UNLISTEN *, RESET ALL): a round trip per request. Pooled connections here
    take no advisory lock, LISTEN or SET (the listener and migrations have their own
    connections), and cursors live inside transactions.
    """


@asynccontextmanager
async def open_pool(dsn: str, *, min_size: int, max_size: int) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
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
