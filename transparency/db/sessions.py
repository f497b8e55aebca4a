"""Queries on brand console sessions. Only the SHA-256 of a session's token is stored."""

from __future__ import annotations

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.identity import Principal, Role


async def open_session(conn: Conn, token_sha256: bytes, api_key_id: str, seconds: float) -> None:
    """Record a session of ``api_key_id`` for ``seconds``; sweep the sessions that ended."""
    await conn.execute("delete from console_sessions where expires_at < now()")
    await conn.execute(
        "insert into console_sessions (token_sha256, api_key_id, expires_at)"
        " values ($1, $2, now() + make_interval(secs => $3))",
        token_sha256,
        api_key_id,
        seconds,
    )


async def principal(conn: Conn | asyncpg.Pool, token_sha256: bytes) -> Principal | None:
    """The caller of a live session: not expired, and its key not revoked since."""
    row = await conn.fetchrow(
        "select k.id, k.role, k.brand_id, k.site_id from console_sessions s"
        " join api_keys k on k.id = s.api_key_id"
        " where s.token_sha256 = $1 and s.expires_at > now() and k.revoked_at is null",
        token_sha256,
    )
    if row is None:
        return None
    return Principal(
        key_id=row["id"], role=Role(row["role"]), brand_id=row["brand_id"], site_id=row["site_id"]
    )


async def close_session(conn: Conn | asyncpg.Pool, token_sha256: bytes) -> None:
    await conn.execute("delete from console_sessions where token_sha256 = $1", token_sha256)
