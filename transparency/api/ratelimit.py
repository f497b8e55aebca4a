"""A token bucket per client address, for the customer endpoints only.

In-process: with several API processes each holds its own buckets, so the effective limit
is the per-process one times the processes behind the balancer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from transparency.domain.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def hit(self, client: str, now: float | None = None) -> None:
        """Take a token for ``client`` or raise RateLimited with the seconds to wait."""
        moment = time.monotonic() if now is None else now
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.clear()  # bounded memory beats perfect accounting
            bucket = self._buckets[client] = _Bucket(self.burst, moment)
        bucket.tokens = min(self.burst, bucket.tokens + (moment - bucket.at) * self.rate)
        bucket.at = moment
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / self.rate)
            raise RateLimited("too many checks from this address; retry later", retry_after=wait)
        bucket.tokens -= 1
