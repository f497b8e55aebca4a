"""Queries on API keys. Only the SHA-256 digest of a key's secret is ever stored."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from transparency.db.errors import translated
from transparency.db.pool import Conn
from transparency.domain.api_keys import ApiKeyToken
from transparency.domain.identity import Role
from transparency.domain.models import ApiKey, Credentials

_COLUMNS = "id, role, brand_id, site_id, label, created_at, revoked_at"


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(**{**row, "role": Role(row["role"])})


async def insert(
    conn: Conn,
    token: ApiKeyToken,
    role: Role,
    *,
    brand_id: UUID | None = None,
    site_id: UUID | None = None,
    label: str | None = None,
) -> ApiKey:
    with translated("API key scope"):
        row = await conn.fetchrow(
            "insert into api_keys (id, role, brand_id, site_id, secret_sha256, label)"
            f" values ($1, $2, $3, $4, $5, $6) returning {_COLUMNS}",
            token.key_id,
            role.value,
            brand_id,
            site_id,
            token.digest,
            label,
        )
    assert row is not None
    return _key(row)


async def credentials(conn: Conn | asyncpg.Pool, key_id: str) -> Credentials | None:
    """The digest, role and scope of a live (unrevoked) key, or None."""
    row = await conn.fetchrow(
        "select secret_sha256, role, brand_id, site_id from api_keys"
        " where id = $1 and revoked_at is null",
        key_id,
    )
    return None if row is None else Credentials(**{**row, "role": Role(row["role"])})


async def live_digests(conn: Conn | asyncpg.Pool, key_ids: list[str]) -> dict[str, bytes]:
    """The secret digests of those of ``key_ids`` still live (unrevoked)."""
    rows = await conn.fetch(
        "select id, secret_sha256 from api_keys where id = any($1::text[]) and revoked_at is null",
        key_ids,
    )
    return {row["id"]: row["secret_sha256"] for row in rows}


CHANNEL = "api_keys"


async def revoke(conn: Conn, key_id: str) -> ApiKey | None:
    """Revoke a key and tell every process (at commit) to forget it."""
    await conn.execute("select pg_notify($1, $2)", CHANNEL, key_id)
    row = await conn.fetchrow(
        # The first revocation's time stands (it is never after now()). least(), not
        # coalesce(): Citus refuses now() inside COALESCE and CASE in an UPDATE.
        "update api_keys set revoked_at = least(revoked_at, now()) where id = $1"
        f" returning {_COLUMNS}",
        key_id,
    )
    return None if row is None else _key(row)


async def bootstrap_admin(conn: Conn, token: ApiKeyToken) -> bool:
    """Install ``token`` as the admin key if no live admin key exists; True if it did.

    The table lock serialises two processes starting for the first time at once.
    """
    async with conn.transaction():
        await conn.execute("lock table api_keys in share row exclusive mode")
        exists = await conn.fetchval(
            "select exists (select 1 from api_keys where role = 'admin' and revoked_at is null)"
        )
        if exists:
            return False
        await upsert_admin(conn, token, "first start")
        return True


async def upsert_admin(conn: Conn, token: ApiKeyToken, label: str) -> None:
    """Install (or re-enable) a given admin key, as TRANSPARENCY_ADMIN_KEY asks."""
    await conn.execute(
        "insert into api_keys (id, role, secret_sha256, label) values ($1, 'admin', $2, $3)"
        " on conflict (id) do update set secret_sha256 = excluded.secret_sha256,"
        " revoked_at = null where api_keys.role = 'admin'",
        token.key_id,
        token.digest,
        label,
    )
