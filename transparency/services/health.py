"""Readiness: the database answers and its schema is the one this code expects."""

from __future__ import annotations

import asyncpg

from transparency.db import migrate
from transparency.domain.errors import Unavailable


async def readiness(pool: asyncpg.Pool) -> dict[str, object]:
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
