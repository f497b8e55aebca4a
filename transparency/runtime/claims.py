"""Single claims that arrive while others are being made go to PostgreSQL together.

A station's claim is one statement that writes and commits; most of its cost is per
statement, not per unit (measured on 2 cores: 0.20 ms of PostgreSQL's CPU for a claim alone,
about 0.03 ms a unit in a tote of 1,000, beside the round trip's system calls on both
sides). So each API process runs at most ``concurrency`` claim statements at once (its
pool's size: more would only wait for a connection). A claim that finds a free slot goes
at once, alone, as before; claims that arrive while every slot is busy wait, as they would
have waited for a connection, and the next free slot takes them all, up to ``limit``, in
one statement (``scans.claim_each``). At low load nothing changes; at saturation a slot
serves several stations at the cost of one.

What each station is told is what it would be told alone: each item keeps its own GTIN,
site, shipment and key, and its own answer. The statement commits them together, so a
failure (a lost connection, a timeout) fails each of them, as it would have failed each
alone; none is left half-done. Two claims of one code never share a statement: the second
waits for the next one and is answered "already shipped" (or passes again, for the same
shipment), as it would be after the first alone. The statement never waits for a unit
another transaction holds (a recall updating a whole batch, say): that unit is left out,
and its claim is made alone, waiting as a single claim always did, so one held unit never
delays the other stations' claims.

Claims under an Idempotency-Key go together too: the statement takes each one's key with
its outcome. A key already taken (a retry, or another request under it) fails the
statement whole, as it fails a claim alone, and its claims are then made each alone: the
one whose key is taken gets None, the others their answers. Retries are rare, so this
costs one statement now and then.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db import scans
from transparency.db.scans import Wanted
from transparency.domain.verification import Claimed


@dataclass(slots=True)
class _Waiting:
    wanted: Wanted
    answer: asyncio.Future[Claimed | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ClaimQueue:
    """An API process's single claims: alone while a slot is free, together after."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        concurrency: int | None = None,
        limit: int = 64,
        together: bool = True,
    ) -> None:
        """``concurrency``: claim statements at once, by default the pool's size.
        ``together``: False on Citus, where one statement over many nodes would commit in
        two phases and wait for every unit; each claim then goes alone to its unit's node."""
        if concurrency is None:
            concurrency = pool.get_max_size()
        if concurrency < 1 or limit < 1:
            raise ValueError("a claim queue needs at least one slot and one claim a statement")
        self.pool = pool
        self.limit = limit
        self.together = together
        self._free = concurrency
        self._waiting: deque[_Waiting] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.statements = 0  # claim statements sent, alone or together

    async def claim(
        self, code: str, gtin: str, *, site_id: UUID, api_key_id: str, shipment_id: str
    ) -> Claimed:
        """Claim one unit key for a station's shipment: what ``scans.claim_one`` answers."""
        claimed = await self._claim(Wanted(code, gtin, site_id, api_key_id, shipment_id))
        assert claimed is not None  # None only answers a claim under a key
        return claimed

    async def claim_keyed(self, wanted: Wanted) -> Claimed | None:
        """Claim one unit key under the Idempotency-Key ``wanted`` names: what
        ``scans.claim_one_keyed`` answers (None, with nothing changed, when it is taken)."""
        return await self._claim(wanted)

    async def _claim(self, wanted: Wanted) -> Claimed | None:
        if not self.together:
            return await self._alone(wanted)
        if self._free and not self._waiting:
            self._free -= 1
            try:
                return await self._alone(wanted)
            finally:
                self._free += 1
                self._start()
        waiting = _Waiting(wanted)
        self._waiting.append(waiting)
        self._start()
        return await waiting.answer

    async def _alone(self, wanted: Wanted) -> Claimed | None:
        self.statements += 1
        if wanted.idempotency_key is None:
            return await scans.claim_one(
                self.pool, wanted.code, wanted.gtin, site_id=wanted.site_id,
                api_key_id=wanted.api_key_id, shipment_id=wanted.shipment_id,
            )  # fmt: skip
        return await scans.claim_one_keyed(self.pool, wanted)

    def _start(self) -> None:
        """Give every free slot a statement of waiting claims."""
        while self._free and self._waiting:
            batch = self._take()
            if not batch:
                return
            self._free -= 1
            self._spawn(self._together(batch))

    def _take(self) -> list[_Waiting]:
        """Up to ``limit`` waiting claims of distinct codes, oldest first; a code already
        taken stays, in its place, for the next statement."""
        batch: list[_Waiting] = []
        codes: set[str] = set()
        later: list[_Waiting] = []
        while self._waiting and len(batch) < self.limit:
            waiting = self._waiting.popleft()
            if waiting.answer.done():  # its request was cancelled: nobody waits for it
                continue
            if waiting.wanted.code in codes:
                later.append(waiting)
            else:
                codes.add(waiting.wanted.code)
                batch.append(waiting)
        self._waiting.extendleft(reversed(later))
        return batch

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # a reference, or the loop may collect the running task
        task.add_done_callback(self._tasks.discard)

    async def _together(self, batch: list[_Waiting]) -> None:
        try:
            if len(batch) == 1:
                answers: list[Claimed | None] = [await self._alone(batch[0].wanted)]
            else:
                self.statements += 1
                answers = await scans.claim_each(self.pool, [w.wanted for w in batch])
        except BaseException as exc:
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._free += 1
            self._start()
        for waiting, answer in zip(batch, answers, strict=True):
            if answer is None:  # its unit held elsewhere, or a key taken: claimed alone
                self._spawn(self._held(waiting))
            else:
                _settle(waiting, answer)

    async def _held(self, waiting: _Waiting) -> None:
        try:
            answer = await self._alone(waiting.wanted)
        except BaseException as exc:
            _fail([waiting], exc)
            if not isinstance(exc, Exception):
                raise
        else:
            _settle(waiting, answer)


def _settle(waiting: _Waiting, answer: Claimed | None) -> None:
    if not waiting.answer.done():  # else its request was cancelled: nobody waits for it
        waiting.answer.set_result(answer)


def _fail(batch: list[_Waiting], exc: BaseException) -> None:
    """Tell waiting claims that their statement failed (or, at shutdown, was cancelled)."""
    for waiting in batch:
        if waiting.answer.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            waiting.answer.cancel()
        else:
            waiting.answer.set_exception(exc)
