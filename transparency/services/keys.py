"""Brand use cases on signing keys: list, rotate, revoke; and the public key list."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from transparency.db import audit
from transparency.db import signing_keys as db
from transparency.db.pool import Conn
from transparency.domain.errors import KeyRotationLimited, NotFound
from transparency.domain.identity import Principal, Role
from transparency.domain.signing_keys import KEYS_PER_DAY, PublicKeyInfo, SigningKey
from transparency.runtime.keyring import KeyRing


def _public(key: SigningKey) -> PublicKeyInfo:
    return PublicKeyInfo(key.id, key.brand_id, key.status, key.public_key, key.created_at)


async def _check_cap(conn: Conn, brand_id: UUID, max_per_day: int) -> None:
    """Refuse a new key past the brand's cap (call with the brand locked)."""
    made, wait = await db.made_lately(conn, brand_id)
    if made >= max_per_day:
        raise KeyRotationLimited(
            f"this brand made {made} signing keys in the last 24 hours, its most;"
            f" retry in {wait} seconds",
            retry_after=wait,
        )


async def ensure_active(
    conn: Conn, keyring: KeyRing, brand_id: UUID, *, max_per_day: int = KEYS_PER_DAY
) -> SigningKey:
    """The brand's active key, made on first use (call inside a transaction).

    A brand that revoked its active key gets a new one here, under the same cap as a
    rotation: revoking and issuing in a loop must not use up the shared key ids either.
    """
    await db.lock_brand(conn, brand_id)
    key_id = await db.active_id(conn, brand_id)
    if key_id is None:
        await _check_cap(conn, brand_id, max_per_day)
        made = await keyring.create(conn, brand_id)
        await db.announce_change(conn)
        return made
    key = keyring.get(key_id)
    if key is None:  # made by another process a moment ago
        await keyring.load(conn)
        key = keyring.get(key_id)
    assert key is not None
    return key


async def list_keys(keyring: KeyRing, actor: Principal) -> list[PublicKeyInfo]:
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    return [_public(k) for k in keyring.of_brand(actor.brand_id)]


async def rotate(
    pool: asyncpg.Pool, keyring: KeyRing, actor: Principal, *, max_per_day: int
) -> PublicKeyInfo:
    """A new active key; the old one retires and keeps verifying the codes it signed.

    At most ``max_per_day`` new keys per brand in any 24 hours (KeyRotationLimited past
    it); KeySpaceExhausted when no key id is left. Either way nothing changes.
    """
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_brand(conn, actor.brand_id)
        await _check_cap(conn, actor.brand_id, max_per_day)
        await db.retire_active(conn, actor.brand_id)
        key = await keyring.create(conn, actor.brand_id)
        await db.announce_change(conn)
        await audit.record(
            conn, api_key_id=actor.key_id, action="signing_key.rotate", target=str(key.id),
            brand_id=actor.brand_id,
        )  # fmt: skip
    await keyring.load(pool)
    return _public(key)


async def revoke(
    pool: asyncpg.Pool, keyring: KeyRing, actor: Principal, key_id: int, reason: str
) -> PublicKeyInfo:
    """A compromised key: its codes verify as key_revoked from now on."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    async with pool.acquire() as conn, conn.transaction():
        if not await db.revoke(conn, actor.brand_id, key_id):
            raise NotFound(f"no signing key {key_id}")
        await db.announce_change(conn)
        await audit.record(
            conn, api_key_id=actor.key_id, action="signing_key.revoke", target=str(key_id),
            brand_id=actor.brand_id, detail={"reason": reason},
        )  # fmt: skip
    await keyring.load(pool)
    key = keyring.get(key_id)
    assert key is not None
    return _public(key)


async def public_keys(
    pool: asyncpg.Pool, *, after: int, limit: int, brand_id: UUID | None
) -> tuple[list[PublicKeyInfo], int | None]:
    """A page of every key's public half (retired and revoked included, for offline
    verifiers), in id order after ``after``; and where the next page starts, if any."""
    page = await db.public_page(pool, after=after, limit=limit, brand_id=brand_id)
    return page, (page[-1].id if len(page) == limit else None)
