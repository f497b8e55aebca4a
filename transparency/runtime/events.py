"""Scan events that concern no unit (malformed, forged), written in bulk in the background.

Refusing a forged code must cost no query, yet every scan is recorded: such events are
buffered and written with one COPY every ``interval`` seconds, and on shutdown. A crash
loses at most that interval of refusals; events about a unit are written in the same
statement as the unit's change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db import scans

log = logging.getLogger("transparency.runtime.events")


class EventBuffer:
    def __init__(self, pool: asyncpg.Pool, *, interval: float = 0.2, limit: int = 100_000) -> None:
        self.pool = pool
        self.interval = interval
        self.limit = limit
        self._rows: list[tuple[Any, ...]] = []
        # One flush at a time: a flush asked for (at shutdown, by a test) while the
        # background one is still writing waits for it, so that when it returns, every
        # event added before it was called is written (or logged as lost).
        self._flushing = asyncio.Lock()

    def add(
        self,
        scanned: str,
        kind: str,
        result: str,
        reason: str,
        *,
        brand_id: UUID | None = None,
        product_id: UUID | None = None,
        site_id: UUID | None = None,
        api_key_id: str | None = None,
        shipment_id: str | None = None,
        region: str | None = None,
    ) -> None:
        """Record a refused scan (in ``scans.EVENT_COLUMNS`` order) for the next COPY.
        ``brand_id`` names the brand the refusal concerns, a forgery's included when it
        carries one of the brand's key ids: the caller knows it from the keyring, so no
        refusal costs a query to attribute."""
        if len(self._rows) < self.limit:  # a flood of forgeries must not exhaust memory
            # Scanned text is anything a camera read; PostgreSQL text holds no NUL. The other
            # fields are validated or ours.
            code = scanned[:200].replace("\x00", "\ufffd") or "-"
            self._rows.append((
                code, datetime.now(UTC), kind, result, reason, brand_id, product_id, site_id,
                api_key_id, shipment_id, region,
            ))  # fmt: skip

    async def flush(self) -> None:
        async with self._flushing:
            rows, self._rows = self._rows, []
            if rows:
                try:
                    await scans.copy_events(self.pool, rows)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("could not write %d scan events: %s", len(rows), exc)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                await self.flush()

        task = asyncio.create_task(loop(), name="event-buffer")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])  # the caller's own cancellation still propagates
            await self.flush()
