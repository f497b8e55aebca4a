"""The asyncpg pool: created in the app's lifespan, never at import time.

Every wait on the database is bounded, so a stuck client or statement costs its own
request a problem response, never everyone a hang: a connection is waited for at most
``acquire_timeout`` (then DatabaseBusy, 503), a statement runs at most
``statement_timeout`` and a transaction may sit idle at most
``idle_in_transaction_timeout`` (PostgreSQL enforces both, so a leaked transaction is
ended even if this process is wedged). A job's bulk statements lift the last two for
their own transaction (``lift_timeouts``): their length follows their size, not a client.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import asyncpg.pool

from transparency.domain.errors import DatabaseBusy, Unavailable


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Connection(asyncpg.Connection):
    """asyncpg's connection, knowing whether its database is a Citus coordinator."""

    __slots__ = ("citus",)
    citus: bool


_CITUS = "select exists (select from pg_extension where extname = 'citus')"
# Connections made elsewhere (a CLI's, a test's), asked once each.
_engines: weakref.WeakKeyDictionary[asyncpg.Connection, bool] = weakref.WeakKeyDictionary()


async def is_citus(conn: Conn) -> bool:
    """Whether ``conn`` reaches a Citus coordinator (deploy/citus.md): for a pooled
    connection, as found when it was made; for any other, asked once."""
    known: bool | None = getattr(conn, "citus", None)
    if known is not None:
        return known
    if not isinstance(conn, asyncpg.Connection):  # borrowed from another pool
        return bool(await conn.fetchval(_CITUS))
    if conn not in _engines:
        _engines[conn] = await conn.fetchval(_CITUS)
    return _engines[conn]


async def _init_pooled(conn: asyncpg.Connection) -> None:
    citus = await conn.fetchval(_CITUS)
    if citus:
        # A coordinator hides the shards it holds from pg_class with a function call on
        # each of its rows (citus.override_table_visibility), and asyncpg's look-up of a
        # type it does not know (once per connection: jsonb's codec below, an enum's first
        # use) reads pg_class once per type of the schema: 0.6 s a connection, past a
        # short statement timeout; 0.6 ms seeing them. The service never reads pg_class.
        await conn.execute("set citus.override_table_visibility = off")
    await _init_connection(conn)
    if isinstance(conn, Connection):
        conn.citus = citus
    # On a Citus coordinator (deploy/citus.md) a generic plan of a statement that does not
    # name one shard by a constant cannot be distributed ("could not create distributed
    # plan"), and a claim function's call is handed to its unit's node only with its
    # arguments known: Citus makes such plans dear, and PostgreSQL's own choice then plans
    # them for their values. Once per connection, not per request.
    if citus:
        await conn.execute("set plan_cache_mode = auto")


async def _keep_session(_: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing beyond asyncpg's own
    rollback of an unfinished transaction.

    asyncpg's default reset sends one more statement per release (unlock advisory locks,
    CLOSE ALL, UNLISTEN *, RESET ALL): a round trip per request. Pooled connections here
    take no advisory lock, LISTEN or SET (the listener and migrations have their own
    connections; ``lift_timeouts`` is SET LOCAL, undone with its transaction), and cursors
    live inside transactions.
    """


class Pool(asyncpg.Pool):
    """asyncpg's pool, with a bounded wait for a connection and slots for bulk reads."""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout
        # A bulk read (a download's rows) runs at the database's pace, seconds for millions
        # of rows; a quarter of the connections at most, so claims always find one free.
        self.bulk_slots = asyncio.Semaphore(max(1, kwargs["max_size"] // 4))

    async def _acquire(
        self,
        timeout: float | None,  # noqa: ASYNC109 - asyncpg's own signature
    ) -> asyncpg.pool.PoolConnectionProxy:
        # The one way in for ``acquire()`` and the pool's own fetch/execute shortcuts.
        wait = self.acquire_timeout if timeout is None else timeout
        try:
            proxy: asyncpg.pool.PoolConnectionProxy = await super()._acquire(wait)  # type: ignore[misc]
        except TimeoutError as exc:
            raise DatabaseBusy(
                f"no database connection came free within {wait:g} s; retry shortly"
            ) from exc
        except OSError as exc:
            # A new connection to a server that is not there: a restarting PostgreSQL's
            # unix socket is missing for a moment (FileNotFoundError, which is no
            # ConnectionError), its port refuses (ConnectionRefusedError).
            raise Unavailable("the database cannot be reached; retry shortly") from exc
        return proxy


@asynccontextmanager
async def open_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    acquire_timeout: float = 5.0,
    statement_timeout: float = 30.0,
    idle_in_transaction_timeout: float = 60.0,
) -> AsyncIterator[asyncpg.Pool]:
    pool = Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_pooled,
        reset=_keep_session,
        loop=None,
        connection_class=Connection,
        record_class=asyncpg.Record,
        acquire_timeout=acquire_timeout,
        server_settings={
            # Statements are prepared once per connection (asyncpg's cache); planning the
            # claim, a statement over partitioned tables, costs more than running it, so
            # keep the generic plan. No query here depends on a plan made for its values.
            "plan_cache_mode": "force_generic_plan",
            "statement_timeout": str(round(statement_timeout * 1000)),
            "idle_in_transaction_session_timeout": str(round(idle_in_transaction_timeout * 1000)),
        },
    )
    async with pool:
        yield pool


async def lift_timeouts(conn: Conn) -> None:
    """Exempt the caller's transaction (a job's bulk write) from the request timeouts.

    A COPY of a million codes, or an import that waits for its worker processes between
    statements, is bounded by its job's lease, not by the 30 s meant for a request.
    """
    await conn.execute(
        "set local statement_timeout = 0; set local idle_in_transaction_session_timeout = 0"
    )


@asynccontextmanager
async def bulk_read(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection in a read-only transaction for a read at the database's pace (a whole
    batch for a download), holding one of the pool's bulk slots.

    A slot is waited for as long as a connection would be, then DatabaseBusy: eight
    downloads at once take their turns, they never take the pool.
    """
    if not isinstance(pool, Pool):
        raise TypeError("bulk reads need a pool made by open_pool")
    wait = pool.acquire_timeout
    try:
        async with asyncio.timeout(wait):  # not wait_for: it can leak a slot
            await pool.bulk_slots.acquire()
    except TimeoutError as exc:
        raise DatabaseBusy(
            f"every slot for bulk reads stayed taken for {wait:g} s; retry shortly"
        ) from exc
    try:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            yield conn
    finally:
        pool.bulk_slots.release()


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the same codecs as the pool's (CLI and fixtures)."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


# What query functions accept: a plain connection or one borrowed from the pool.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
