"""The keyring: every brand's signing keys, decrypted in memory for signing and checks.

It is loaded at start-up and reloaded whenever any process changes a key (PostgreSQL
NOTIFY on the ``signing_keys`` channel), so a revocation made through one process holds
at once in all of them. Checking a tag needs no database query.
"""

from __future__ import annotations

import asyncio
import logging
import os
from uuid import UUID

import asyncpg
import nacl.signing

from transparency.db import signing_keys as db
from transparency.db.pool import Conn
from transparency.domain.signing_keys import KeyStatus, SigningKey, StoredKey
from transparency.runtime.envelope import MasterKey
from transparency.runtime.notifications import Listener

log = logging.getLogger("transparency.runtime.keyring")


def _context(brand_id: UUID, key_id: int) -> bytes:
    return f"{brand_id}|{key_id}".encode()


class KeyRing:
    def __init__(self, master: MasterKey) -> None:
        self._master = master
        self._keys: dict[int, SigningKey] = {}
        self._lock = asyncio.Lock()

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

    async def load(self, conn: Conn | asyncpg.Pool) -> None:
        async with self._lock:  # one load at a time: they may share a connection
            stored = await db.all_keys(conn)
            self._keys = {key.id: self._open(key) for key in stored}

    async def create(self, conn: Conn, brand_id: UUID) -> SigningKey:
        """Make and store a new active key for ``brand_id`` (the caller retires the old)."""
        key_id = await db.next_id(conn)
        secret = os.urandom(32)
        private = nacl.signing.SigningKey.generate()
        sealed = self._master.seal(_context(brand_id, key_id), secret, bytes(private))
        stored = await db.insert(conn, key_id, brand_id, sealed, bytes(private.verify_key))
        return self._open(stored)

    async def follow(self, listener: Listener, pool: asyncpg.Pool) -> None:
        """Load now, and reload whenever any process announces a key change."""
        reloads: set[asyncio.Task[None]] = set()

        def changed(_: str) -> None:
            task = asyncio.get_running_loop().create_task(self.load(pool))
            reloads.add(task)  # keep a reference until it is done
            task.add_done_callback(reloads.discard)

        await listener.on(db.CHANNEL, changed)
        await self.load(pool)
