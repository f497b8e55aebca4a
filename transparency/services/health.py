"""Readiness: the database answers, its schema is the one this code expects, and this
process hears of key changes (so a revocation holds here within the bound)."""

from __future__ import annotations

import asyncpg

from transparency.db import migrate
from transparency.domain.errors import Unavailable
from transparency.runtime.notifications import Listener


async def readiness(pool: asyncpg.Pool, listener: Listener) -> dict[str, object]:
    if not listener.ready:
        raise Unavailable("this process cannot hear of key revocations (not listening)")
    try:
        async with pool.acquire(timeout=2) as conn:
            todo = await migrate.pending(conn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise Unavailable("the database cannot be reached") from exc
    except migrate.MigrationError as exc:
        raise Unavailable(str(exc)) from exc
    if todo:
        raise Unavailable(f"migrations not applied: {[m.version for m in todo]}")
    return {"status": "ready", "migrations": len(migrate.available())}
