"""What every check needs and an API process holds once: the pool, the keyring, the
buffer that writes refused scans in bulk and the queue that claims single units together."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from transparency.runtime.claims import ClaimQueue
from transparency.runtime.events import EventBuffer
from transparency.runtime.keyring import KeyRing


@dataclass(frozen=True, slots=True)
class Context:
    pool: asyncpg.Pool
    keyring: KeyRing
    events: EventBuffer
    claims: ClaimQueue
