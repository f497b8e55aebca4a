"""A token bucket per client address, for the customer endpoints only.

One API process keeps its buckets in a dict. Several processes on one machine (serve with
TRANSPARENCY_WORKERS) share them through a file they all map (``SharedBuckets``), so a
client's budget is the same whichever process its connections reach. Instances behind a
load balancer on other machines still count apart: their limit adds up.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import time

from transparency.domain.errors import RateLimited

# Set by `serve` for its API processes: the file their SharedBuckets map.
SHARED_FILE_ENV = "TRANSPARENCY_CUSTOMER_BUCKETS"


def _spend(tokens: float, at: float, now: float, rate: float, burst: float) -> tuple[float, float]:
    """A bucket's tokens at ``now`` (refilled since ``at``), and what it keeps after a
    request: one token less, or all of them if there was not a whole one to take."""
    held = min(burst, tokens + (now - at) * rate)
    return held, held - 1 if held >= 1 else held


class LocalBuckets:
    """The buckets of one API process, in a dict."""

    def __init__(self, max_clients: int = 100_000) -> None:
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str, now: float, rate: float, burst: float) -> float:
        """Take a token; the tokens held before taking it (under 1: refused, none taken)."""
        found = self._buckets.get(client)
        if found is None and len(self._buckets) >= self.max_clients:
            self._buckets.clear()  # bounded memory beats perfect accounting
        tokens, at = found or (burst, now)
        held, left = _spend(tokens, at, now, rate, burst)
        self._buckets[client] = (left, now)
        return held

    def close(self) -> None:
        pass


class SharedBuckets:
    """Buckets in a file mapped by every API process: a fixed table of slots, each a client's
    key, tokens and time, read and written under a lock on that slot's bytes.

    A client's slot comes from a hash keyed with a random salt the file's creator wrote, so
    nobody can pick two addresses that share a slot. Two clients that happen to share one
    take it from each other, each starting again with a full bucket: bounded memory beats
    perfect accounting, as for the dict.
    """

    _SLOT = struct.Struct("<Qdd")  # key, tokens, when (CLOCK_MONOTONIC: one per machine)
    _SALT = 16  # bytes at the start of the file

    def __init__(self, path: str, slots: int = 65_536) -> None:
        self.slots = slots
        size = self._SALT + slots * self._SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.lockf(self._fd, fcntl.LOCK_EX)  # the first process to open it writes the salt
        try:
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)  # zeros: every slot empty
                os.pwrite(self._fd, os.urandom(self._SALT), 0)
            self._salt = os.pread(self._fd, self._SALT, 0)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(self._fd, size)

    def take(self, client: str, now: float, rate: float, burst: float) -> float:
        """As ``LocalBuckets.take``, under the slot's lock."""
        hashed = self._hash(client)
        key = hashed | 1  # never 0, the empty slot
        offset = self._SALT + (hashed % self.slots) * self._SLOT.size
        fcntl.lockf(self._fd, fcntl.LOCK_EX, self._SLOT.size, offset)
        try:
            owner, tokens, at = self._SLOT.unpack_from(self._map, offset)
            if owner != key:
                tokens, at = burst, now
            held, left = _spend(tokens, at, now, rate, burst)
            self._SLOT.pack_into(self._map, offset, key, left, now)
            return held
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, self._SLOT.size, offset)

    def slot_of(self, client: str) -> int:
        return self._hash(client) % self.slots

    def _hash(self, client: str) -> int:
        digest = hashlib.blake2b(client.encode(), digest_size=8, key=self._salt).digest()
        return int.from_bytes(digest, "little")

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class RateLimiter:
    def __init__(
        self, per_minute: int, burst: int, buckets: LocalBuckets | SharedBuckets | None = None
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.buckets = buckets if buckets is not None else LocalBuckets()

    def hit(self, client: str, now: float | None = None) -> None:
        """Take a token for ``client`` or raise RateLimited with the seconds to wait."""
        moment = time.monotonic() if now is None else now
        tokens = self.buckets.take(client, moment, self.rate, self.burst)
        if tokens < 1:
            wait = math.ceil((1 - tokens) / self.rate)
            raise RateLimited("too many checks from this address; retry later", retry_after=wait)
