"""One PostgreSQL LISTEN connection per process, shared by whatever must hear of changes
made by other processes (signing keys, API key revocations)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg


class Listener:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def on(self, channel: str, callback: Callable[[str], None]) -> None:
        def deliver(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            callback(str(payload))

        await self.conn.add_listener(channel, deliver)


@asynccontextmanager
async def listening(dsn: str) -> AsyncIterator[Listener]:
    conn = await asyncpg.connect(dsn)
    try:
        yield Listener(conn)
    finally:
        await conn.close()
