"""A byte pace: at most ``rate`` bytes a second in all, over every reader that shares it.

Serial-import uploads are read at such a pace, one per API process. An upload is bulk work
that arrives on an API process, the process that answers claims: receiving, deflating and
hashing a 12 MB file there costs about 35 ms of CPU, and the attack bench_faults.py calls a
hostile import (such a file a second) raised the stations' claim p99 about 3x, most of it
from the uploads alone (2.4x with every file a repeat, so no job ran). Read at a pace, an
upload's work is spread thin instead of taking most of a core for 60 ms at a time, and a
client cannot make a process receive faster than the pace, however many uploads it sends.

Each ``take(n)`` reserves its bytes at once and sleeps until the pace has caught up with
them (virtual scheduling, as GCRA does): readers sharing a pace are served in the order
they asked, and ``burst`` bytes go through without a wait after a quiet spell, so a small
import is never slowed. While a reader sleeps it does not read: the server stops reading
its socket, TCP's window closes, and the client waits. The deadline for a slow body does
not count that time (serve/http.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable


class BytePace:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 0:
            raise ValueError("a pace needs a positive rate and a burst of zero or more")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        # When the bytes reserved so far are all paid for: a new pace has its burst to give.
        self._due = clock() - burst / rate

    async def take(self, n: int) -> None:
        """Wait until ``n`` more bytes may be read."""
        now = self._clock()
        # Credit for a quiet spell is capped at ``burst`` bytes' worth of time.
        self._due = max(self._due, now - self.burst / self.rate) + n / self.rate
        if self._due > now:
            await self._sleep(self._due - now)

    async def paced(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks``, each handed on once the pace allows its bytes."""
        async for chunk in chunks:
            await self.take(len(chunk))
            yield chunk
