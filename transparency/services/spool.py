"""A spool: rows read at the database's pace into a temporary file, read back at a
client's.

A download must not hold a pooled connection, nor an open transaction, while it waits for
its client: eight clients that stop reading would take the pool, and every warehouse's
claims would wait. So the read runs on its own, in one read-only transaction on one of the
pool's bulk slots (``pool.bulk_read``), and the response is made from the file. A client
that takes nothing for ``STALL_SECONDS`` has its spool abandoned (file dropped).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import struct
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import asyncpg

from transparency.db.pool import Conn, bulk_read

log = logging.getLogger("transparency.services.spool")

# A download whose client takes nothing for this long is abandoned: its spool file is
# dropped and its renderer ended (a client on a slow link still takes a 64 KB piece in
# seconds; one that stopped reading would otherwise keep them as long as it stays connected).
STALL_SECONDS = 60.0

_LENGTH = struct.Struct("<I")


class Spool:
    """Frames of rows written at the database's pace to a temporary file, read back at
    the client's.

    The file is written and read with pwrite/pread on the event loop: a frame is a few
    hundred KB into the page cache, microseconds, not worth a thread hop.
    """

    def __init__(self, stall_seconds: float = STALL_SECONDS) -> None:
        self.stall_seconds = stall_seconds
        self._abandoned = False
        self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 - closed by close()
        self._fd = self._file.fileno()
        self._written = 0
        self._done = False
        self._error: Exception | None = None
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(
        self, pool: asyncpg.Pool, read: Callable[[Conn], AsyncIterator[list[Any]]]
    ) -> None:
        """Start ``read`` on a bulk slot; return once it holds its connection, so a busy
        pool is this request's 503 problem, not a download broken half-way."""
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def fill() -> None:
            try:
                async with bulk_read(pool) as conn:
                    started.set_result(None)
                    async for rows in read(conn):
                        self._append(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception as exc:
                if started.done():
                    self._error = exc
                else:
                    started.set_exception(exc)
            finally:
                self._done = True
                self._progress.set()

        self._task = asyncio.create_task(fill())
        try:
            await started
        except BaseException:
            await self.close()
            raise

    def _append(self, frame: bytes) -> None:
        data = _LENGTH.pack(len(frame)) + frame
        os.pwrite(self._fd, data, self._written)
        self._written += len(data)
        self._progress.set()

    def _read(self, size: int, offset: int) -> bytes:
        data = os.pread(self._fd, size, offset)
        while len(data) < size:  # a regular file reads whole, but be exact
            data += os.pread(self._fd, size - len(data), offset + len(data))
        return data

    async def frames(self) -> AsyncGenerator[list[Any], None]:
        """Every frame, in order, as soon as it is written; the spool is closed after.

        Abandoned (file dropped, read stopped) if its reader takes nothing for
        ``stall_seconds``; the reader then gets ConnectionAbortedError if it ever resumes.
        """
        loop = asyncio.get_running_loop()
        offset = 0
        try:
            while True:
                if offset < self._written:
                    (size,) = _LENGTH.unpack(self._read(_LENGTH.size, offset))
                    frame = self._read(size, offset + _LENGTH.size)
                    offset += _LENGTH.size + size
                    stall = loop.call_later(self.stall_seconds, self._abandon)
                    yield pickle.loads(frame)  # noqa: S301 - written by this process
                    stall.cancel()
                    if self._abandoned:
                        raise ConnectionAbortedError("the client stopped reading for too long")
                elif self._done:
                    if self._error is not None:
                        raise self._error
                    return
                else:
                    self._progress.clear()
                    await self._progress.wait()
        finally:
            await self.close()

    @property
    def abandoned(self) -> bool:
        """Whether its reader took nothing for ``stall_seconds`` (the file is gone)."""
        return self._abandoned

    def _abandon(self) -> None:
        log.warning("download stalled for %g s; abandoned", self.stall_seconds)
        self._abandoned = True
        if self._task is not None:
            self._task.cancel()
        self._file.close()

    async def close(self) -> None:
        """Stop the read if it still runs (its transaction rolls back) and drop the file."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])  # the caller's own cancellation propagates
        self._file.close()
