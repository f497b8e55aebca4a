"""The keyring: every brand's signing keys, decrypted in memory for signing and checks.

It is loaded at start-up and kept current by the process's listener
(``runtime/notifications.py``): whenever any process announces a key change (PostgreSQL
NOTIFY on the ``signing_keys`` channel), every ``catch_up_seconds`` in case a notification
was lost, and fully after every reconnect. Each look reads the ids and statuses of the keys
changed lately (an index range); only keys it has never seen are read whole and opened,
in a thread, so a platform of a million keys neither reloads them all nor holds the event
loop while it opens them. Checking a tag needs no database query.

A check takes its look-up from ``current``, which holds the bound itself: a keyring whose
last look is older than ``max_age`` looks again before it answers. Its catch-ups keep it
well within the bound; ``current`` covers the process whose catch-ups fall behind (one
starved of CPU, a catch-up failing while requests get through).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import time
from datetime import datetime
from uuid import UUID

import asyncpg
import nacl.signing

from transparency.db import signing_keys as db
from transparency.db.pool import Conn
from transparency.domain.authenticity import KeyLookup
from transparency.domain.signing_keys import KeyStatus, SigningKey, StoredKey
from transparency.runtime.envelope import MasterKey
from transparency.runtime.notifications import Listener

log = logging.getLogger("transparency.runtime.keyring")

_OPEN_INLINE = 16  # keys opened on the event loop; more are opened in a thread


def _context(brand_id: UUID, key_id: int) -> bytes:
    return f"{brand_id}|{key_id}".encode()


class KeyRing:
    def __init__(self, master: MasterKey, *, max_age: float = math.inf) -> None:
        self._master = master
        self.max_age = max_age
        self._keys: dict[int, SigningKey] = {}
        self._lock = asyncio.Lock()
        self._looked_at: datetime | None = None  # the database's time of the last look
        self._vouched_at = -math.inf  # time.monotonic() when that look was asked

    async def current(self, conn: Conn | asyncpg.Pool) -> KeyLookup:
        """``get``, once the keyring has looked at the database within ``max_age`` seconds:
        a look that is due is made here first (one at a time; the others wait for it).
        Within the bound, as its catch-ups keep it, no query."""
        if self._due():
            async with self._lock:
                if self._due():  # not looked meanwhile by a check that held the lock
                    await self._look(conn, full=False)
        return self.get

    def _due(self) -> bool:
        return time.monotonic() - self._vouched_at > self.max_age

    def get(self, key_id: int) -> SigningKey | None:
        return self._keys.get(key_id)

    def active_for(self, brand_id: UUID) -> SigningKey | None:
        for key in self._keys.values():
            if key.brand_id == brand_id and key.status is KeyStatus.ACTIVE:
                return key
        return None

    def of_brand(self, brand_id: UUID) -> list[SigningKey]:
        return sorted(
            (k for k in self._keys.values() if k.brand_id == brand_id), key=lambda k: k.id
        )

    def all(self) -> list[SigningKey]:
        return sorted(self._keys.values(), key=lambda k: k.id)

    def _open(self, stored: StoredKey) -> SigningKey:
        context = _context(stored.brand_id, stored.id)
        hmac_secret, private = self._master.open(context, stored.sealed)
        return SigningKey(
            id=stored.id,
            brand_id=stored.brand_id,
            status=stored.status,
            hmac_secret=hmac_secret,
            private_key=nacl.signing.SigningKey(private),  # the 32-byte seed
            public_key=stored.public_key,
            created_at=stored.created_at,
        )

    async def load(self, conn: Conn | asyncpg.Pool, *, full: bool = False) -> None:
        """Learn the keys made, retired or revoked since the last look (``full``: every
        key's status, as after a reconnect, when notifications may have been lost)."""
        async with self._lock:  # one load at a time: they may share a connection
            await self._look(conn, full=full)

    async def _look(self, conn: Conn | asyncpg.Pool, *, full: bool) -> None:
        asked_at = time.monotonic()  # what the database vouches for is at least this fresh
        since = None if full else self._looked_at
        looked_at, statuses = await db.statuses(conn, since)
        unknown = [key_id for key_id in statuses if key_id not in self._keys]
        opened = await self._open_all(await db.sealed(conn, unknown)) if unknown else []
        # In place when only a few changed: a copy of a million keys per look would hold
        # the event loop longer than the look itself.
        keys = self._keys if since is not None else {}
        for key_id, status in statuses.items():
            known = self._keys.get(key_id)
            if known is not None:
                same = known.status is status
                keys[key_id] = known if same else dataclasses.replace(known, status=status)
        keys.update((key.id, key) for key in opened)
        self._keys, self._looked_at, self._vouched_at = keys, looked_at, asked_at

    async def _open_all(self, stored: list[StoredKey]) -> list[SigningKey]:
        # Opening a key (AES-GCM, then Ed25519's public point) takes about 0.1 ms: a
        # thousand keys at start-up would hold the event loop a tenth of a second.
        if len(stored) <= _OPEN_INLINE:
            return [self._open(key) for key in stored]
        return await asyncio.to_thread(lambda: [self._open(key) for key in stored])

    async def create(self, conn: Conn, brand_id: UUID) -> SigningKey:
        """Make and store a new active key for ``brand_id`` (the caller retires the old)."""
        key_id = await db.next_id(conn)
        secret = os.urandom(32)
        private = nacl.signing.SigningKey.generate()
        sealed = self._master.seal(_context(brand_id, key_id), secret, bytes(private))
        stored = await db.insert(conn, key_id, brand_id, sealed, bytes(private.verify_key))
        return self._open(stored)

    def follow(self, listener: Listener, pool: asyncpg.Pool) -> None:
        """Stay current with every process's key changes, as the module docstring says."""
        reloads: set[asyncio.Task[None]] = set()

        async def reload() -> None:
            try:
                await self.load(pool)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("could not reload the keyring; the next catch-up will")

        def changed(_: str) -> None:
            task = asyncio.get_running_loop().create_task(reload())
            reloads.add(task)  # keep a reference until it is done
            task.add_done_callback(reloads.discard)

        async def catch_up(full: bool) -> None:
            await self.load(pool, full=full)

        listener.on(db.CHANNEL, changed, catch_up)
