"""Queries on signing keys. Private material is only ever stored sealed."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.errors import KeySpaceExhausted
from transparency.domain.signing_keys import KeyStatus, PublicKeyInfo, Sealed, StoredKey

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
    try:
        value: int = await conn.fetchval(
            "select nextval(pg_get_serial_sequence('signing_keys', 'id'))"
        )
    except asyncpg.SequenceGeneratorLimitExceededError as exc:
        # The identity's maximum is the largest id a code can carry (migration 0011).
        raise KeySpaceExhausted(
            "every signing-key id the code format can carry is taken; no new key can be"
            " made until an operator acts",
            retry_after=3600,
        ) from exc
    return value


async def made_lately(conn: Conn, brand_id: UUID) -> tuple[int, int]:
    """How many keys the brand made in the last 24 hours, and the seconds until the oldest
    of them leaves that window (0 when none)."""
    row = await conn.fetchrow(
        "select count(*) as made,"
        " coalesce(ceil(extract(epoch from min(created_at) + interval '24 hours' - now())), 0)"
        "::integer as wait"
        " from signing_keys where brand_id = $1 and created_at > now() - interval '24 hours'",
        brand_id,
    )
    assert row is not None
    made: int = row["made"]
    return made, (max(row["wait"], 1) if made else 0)


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
        # The first revocation's time stands; least(), not coalesce(): see api_keys.revoke.
        "update signing_keys set status = 'revoked', revoked_at = least(revoked_at, now())"
        " where brand_id = $1 and id = $2",
        brand_id,
        key_id,
    )
    return result != "UPDATE 0"


async def public_page(
    conn: Conn | asyncpg.Pool, *, after: int, limit: int, brand_id: UUID | None
) -> list[PublicKeyInfo]:
    """Public halves in id order after ``after`` (keyset paging: each page is one index
    range, on the primary key or on (brand_id, id), however many keys come before it)."""
    columns = "id, brand_id, status, ed25519_public, created_at"
    if brand_id is None:
        rows = await conn.fetch(
            f"select {columns} from signing_keys where id > $1 order by id limit $2",
            after,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"select {columns} from signing_keys where brand_id = $1 and id > $2"
            " order by id limit $3",
            brand_id,
            after,
            limit,
        )
    return [
        PublicKeyInfo(
            row["id"],
            row["brand_id"],
            KeyStatus(row["status"]),
            row["ed25519_public"],
            row["created_at"],
        )
        for row in rows
    ]


# A change is stamped with its transaction's start (now()), and may commit after a later
# look has passed that stamp: each look goes back this far, the longest a transaction that
# changes keys may take (a rotation waiting for another on the brand's lock included).
_CHANGES_OVERLAP = "10 minutes"


async def statuses(
    conn: Conn | asyncpg.Pool, changed_since: datetime | None = None
) -> tuple[datetime, dict[int, KeyStatus]]:
    """The status of every key, or of the keys made, retired or revoked since
    ``changed_since``; and the time to pass as ``changed_since`` next time.

    Only ids and statuses: the sealed secrets of the keys not yet known are read apart
    (``sealed``), so a look that finds nothing new costs an index range.
    """
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as borrowed:
            return await statuses(borrowed, changed_since)
    async with conn.transaction():  # a savepoint when the caller has a transaction open
        now: datetime = await conn.fetchval("select statement_timestamp()")
        if changed_since is None:
            rows = await conn.fetch("select id, status from signing_keys")
        else:
            # The pool plans generically (pool.py), and a generic plan of "> $1" guesses a
            # third of the keys and scans them all; planned for its value, it is a range of
            # the index that migration 0014 made.
            await conn.execute("set local plan_cache_mode = auto")
            rows = await conn.fetch(
                "select id, status from signing_keys"
                " where greatest(created_at, retired_at, revoked_at)"
                f" > $1::timestamptz - interval '{_CHANGES_OVERLAP}'",
                changed_since,
            )
    return now, {row["id"]: KeyStatus(row["status"]) for row in rows}


async def sealed(conn: Conn | asyncpg.Pool, key_ids: list[int]) -> list[StoredKey]:
    rows = await conn.fetch(
        f"select {_COLUMNS} from signing_keys where id = any($1::integer[])", key_ids
    )
    return [_stored(row) for row in rows]


CHANNEL = "signing_keys"


async def announce_change(conn: Conn) -> None:
    """Tell every service process (delivered at commit) to reload its keyring."""
    await conn.execute("select pg_notify($1, '')", CHANNEL)
