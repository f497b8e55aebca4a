"""Queries on signing keys. Private material is only ever stored sealed."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.signing_keys import KeyStatus, Sealed, StoredKey

_COLUMNS = (
    "id, brand_id, status, created_at, ed25519_public, wrapped_dek, kek_fingerprint,"
    " hmac_secret_enc, ed25519_private_enc"
)


def _stored(row: asyncpg.Record) -> StoredKey:
    return StoredKey(
        id=row["id"],
        brand_id=row["brand_id"],
        status=KeyStatus(row["status"]),
        public_key=row["ed25519_public"],
        created_at=row["created_at"],
        sealed=Sealed(
            wrapped_dek=row["wrapped_dek"],
            kek_fingerprint=row["kek_fingerprint"],
            ciphertexts=(row["hmac_secret_enc"], row["ed25519_private_enc"]),
        ),
    )


async def next_id(conn: Conn) -> int:
    """Reserve an id first: the sealed secrets are bound to it."""
    value: int = await conn.fetchval("select nextval(pg_get_serial_sequence('signing_keys', 'id'))")
    return value


async def insert(
    conn: Conn, key_id: int, brand_id: UUID, sealed: Sealed, public_key: bytes
) -> StoredKey:
    hmac_enc, private_enc = sealed.ciphertexts
    row = await conn.fetchrow(
        "insert into signing_keys (id, brand_id, status, hmac_secret_enc, ed25519_private_enc,"
        " ed25519_public, wrapped_dek, kek_fingerprint)"
        " overriding system value values ($1, $2, 'active', $3, $4, $5, $6, $7)"
        f" returning {_COLUMNS}",
        key_id,
        brand_id,
        hmac_enc,
        private_enc,
        public_key,
        sealed.wrapped_dek,
        sealed.kek_fingerprint,
    )
    assert row is not None
    return _stored(row)


async def lock_brand(conn: Conn, brand_id: UUID) -> None:
    """Serialise key changes of one brand (two rotations at once would clash)."""
    await conn.execute("select 1 from brands where id = $1 for update", brand_id)


async def active_id(conn: Conn, brand_id: UUID) -> int | None:
    value: int | None = await conn.fetchval(
        "select id from signing_keys where brand_id = $1 and status = 'active'", brand_id
    )
    return value


async def retire_active(conn: Conn, brand_id: UUID) -> None:
    await conn.execute(
        "update signing_keys set status = 'retired', retired_at = now()"
        " where brand_id = $1 and status = 'active'",
        brand_id,
    )


async def revoke(conn: Conn, brand_id: UUID, key_id: int) -> bool:
    result: str = await conn.execute(
        "update signing_keys set status = 'revoked', revoked_at = coalesce(revoked_at, now())"
        " where brand_id = $1 and id = $2",
        brand_id,
        key_id,
    )
    return result != "UPDATE 0"


async def all_keys(conn: Conn | asyncpg.Pool) -> list[StoredKey]:
    rows = await conn.fetch(f"select {_COLUMNS} from signing_keys")
    return [_stored(row) for row in rows]


CHANNEL = "signing_keys"


async def announce_change(conn: Conn) -> None:
    """Tell every service process (delivered at commit) to reload its keyring."""
    await conn.execute("select pg_notify($1, '')", CHANNEL)
