"""Signing keys as the keyring tests handle them: the key behind freshly issued codes, and a
revocation made behind every process's back."""

from __future__ import annotations

import asyncpg
import httpx

from tests.support.world import World, issue_codes
from transparency.domain import codes


async def issued_with_key(
    client: httpx.AsyncClient, world: World, count: int
) -> tuple[list[dict[str, str]], int]:
    """``count`` new codes of product A (their CSV rows) and the id of the key they carry."""
    rows = await issue_codes(client, world, count)
    key_id = codes.parse(rows[0]["code"]).key_id
    assert key_id is not None
    return rows, key_id


async def revoke_unheard(pool: asyncpg.Pool, key_id: int) -> None:
    """Revoke a signing key as another process would, its notification lost (no NOTIFY)."""
    await pool.execute(
        "update signing_keys set status = 'revoked', revoked_at = now() where id = $1", key_id
    )
