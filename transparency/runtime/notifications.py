"""One PostgreSQL LISTEN connection per process, shared by whatever must hear of changes
made by other processes (signing keys, API key revocations).

A notification is lost with the connection that should have carried it: PostgreSQL
restarts, a network drop, pg_terminate_backend. So the listener reconnects (after 0.1 s,
doubling up to 5 s while it keeps failing) and LISTENs again, and every follower says how
it catches up on what it may have missed: fully after every connect, since anything may
have changed unheard while it was down, and cheaply every ``catch_up_seconds`` whatever
happens, so that a change is heard within that bound even if its notification is lost on
a connection that looks alive. The catch-ups run on the pool, not on this connection, so
they go on while it is down.

``ready`` is False while the process cannot listen or has not caught up since it last
connected: /readyz then answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import asyncpg

from transparency.db.ping import ping

log = logging.getLogger("transparency.runtime.notifications")

# How a follower catches up; its argument says whether it must do so fully (after a
# connect) or may look at recent changes only.
CatchUp = Callable[[bool], Awaitable[None]]

APPLICATION_NAME = "transparency listener"  # in pg_stat_activity, for operators and tests
JOBS_APPLICATION_NAME = "transparency jobs listener"  # the job process's (serve/jobs.py)
_FIRST_PAUSE = 0.1
_LONGEST_PAUSE = 5.0
_PING_SECONDS = 5.0  # a connection silently dropped (no FIN) is found by a ping that fails
_CONNECT_SECONDS = 5.0


class Listener:
    def __init__(
        self, dsn: str, *, catch_up_seconds: float, application_name: str = APPLICATION_NAME
    ) -> None:
        self._dsn = dsn
        self._application_name = application_name
        self.catch_up_seconds = catch_up_seconds
        self._channels: list[tuple[str, Callable[..., None]]] = []
        self._followers: list[CatchUp] = []
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._due = asyncio.Event()
        self._connects = 0
        self._caught_up_with = -1  # the connect after which a full catch-up succeeded
        self._caught_up_at = 0.0  # time.monotonic() of the last catch-up that succeeded

    def on(self, channel: str, callback: Callable[[str], None], catch_up: CatchUp) -> None:
        """Call ``callback`` with each notification's payload on ``channel``, and
        ``catch_up`` as the module docstring says (register before ``running``)."""

        def deliver(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            callback(str(payload))

        self._channels.append((channel, deliver))
        self._followers.append(catch_up)

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def ready(self) -> bool:
        """Listening, caught up fully since it last connected, and lately (four periods:
        a slow database may delay a catch-up or two without taking the process out)."""
        age = time.monotonic() - self._caught_up_at
        caught_up = self._caught_up_with == self._connects
        return self.listening and caught_up and age <= 4 * self.catch_up_seconds

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Listener]:
        """Connect and catch every follower up (failures raise: the process cannot start
        without its keys), then keep both so until the block ends."""
        await self._connect()
        await self._catch_up()
        tasks = [
            asyncio.create_task(self._keep_connected(), name="listener"),
            asyncio.create_task(self._keep_caught_up(), name="listener-catch-up"),
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)  # the caller's own cancellation still propagates
            if self._conn is not None:
                with suppress(OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await self._conn.close(timeout=_CONNECT_SECONDS)

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self._dsn,
            timeout=_CONNECT_SECONDS,
            server_settings={"application_name": self._application_name},
        )

        def ended(which: object) -> None:
            if which is self._conn:  # one terminated earlier may report its end late
                self._lost.set()

        try:
            conn.add_termination_listener(ended)
            for channel, deliver in self._channels:
                await conn.add_listener(channel, deliver)
        except BaseException:
            conn.terminate()
            raise
        self._lost.clear()
        self._conn = conn
        # Listening from here on: whatever changed before is found by a full catch-up.
        self._connects += 1
        self._due.set()

    async def _keep_connected(self) -> None:
        pause = _FIRST_PAUSE
        while True:
            try:
                if self._lost.is_set() or not self.listening:
                    if self._conn is not None:
                        log.warning("the LISTEN connection was lost; connecting again")
                        self._conn.terminate()
                        self._conn = None
                    await self._connect()
                    log.info("listening again")
                    pause = _FIRST_PAUSE
                with suppress(TimeoutError):  # asyncio.timeout: see JobRunner._loop
                    async with asyncio.timeout(_PING_SECONDS):
                        await self._lost.wait()
                if self._conn is not None and not self._lost.is_set():
                    await ping(self._conn, _PING_SECONDS)
            except Exception as exc:  # whatever it was, listening again is the remedy
                log.warning("cannot listen (%s); trying again in %.1f s", exc, pause)
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)

    async def _keep_caught_up(self) -> None:
        while True:
            with suppress(TimeoutError):  # asyncio.timeout: see JobRunner._loop
                async with asyncio.timeout(self.catch_up_seconds):
                    await self._due.wait()
            try:
                await self._catch_up()
            except Exception:  # the database, most likely: try again soon, whatever it was
                log.warning("cannot catch up on key changes", exc_info=True)
                await asyncio.sleep(_FIRST_PAUSE)
                self._due.set()  # soon again, not a whole period later

    async def _catch_up(self) -> None:
        self._due.clear()
        connect, started = self._connects, time.monotonic()
        full = self._caught_up_with != connect
        for follower in self._followers:
            await follower(full)
        self._caught_up_with = connect
        self._caught_up_at = started
