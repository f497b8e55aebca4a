"""Brand console use cases: a brand key exchanged for a session, and what its pages list.

A session is a random token in an HttpOnly cookie; the database holds only its SHA-256, and
the key it was opened with, so revoking the key ends the session at its next request. The
CSRF token of a session's forms is derived from the session's token (a digest of it under
another label): it needs no storage, changes with every session, and cannot be computed
by a page that cannot read the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import asyncpg

from transparency.db import audit, batches, sessions
from transparency.domain.batches import Batch, JobKind
from transparency.domain.errors import CsrfRefused, SignInRequired
from transparency.domain.identity import Principal, Role
from transparency.services.auth import KeyCache, authenticate

_TOKEN_BYTES = 32  # 256 bits: a session cannot be guessed


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def csrf_of(token: str) -> str:
    """The CSRF token of the forms of the session ``token``."""
    mac = hashlib.sha256(b"transparency console csrf\0" + token.encode()).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def check_csrf(expected: str | None, sent: str | None) -> None:
    """Refuse a form whose CSRF token is not the one expected (compared in constant time)."""
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRefused("this form was not sent from a page of this console; reload it")


async def sign_in(
    pool: asyncpg.Pool, cache: KeyCache | None, key: str, *, seconds: float
) -> tuple[str, Principal]:
    """A new session for the brand key ``key``: its token (for the cookie) and its caller."""
    actor = await authenticate(pool, f"Bearer {key.strip()}", cache)
    actor.require(Role.BRAND)
    token = new_token()
    async with pool.acquire() as conn, conn.transaction():
        await sessions.open_session(conn, _digest(token), actor.key_id, seconds)
        await audit.record(
            conn, api_key_id=actor.key_id, action="console.sign_in", brand_id=actor.brand_id
        )
    return token, actor


async def caller(pool: asyncpg.Pool, token: str | None) -> Principal:
    """The brand of a live session, or SignInRequired."""
    found = await sessions.principal(pool, _digest(token)) if token else None
    if found is None:
        raise SignInRequired("sign in to the console with a brand key")
    return found


async def sign_out(pool: asyncpg.Pool, token: str) -> None:
    """End the session ``token`` here, server-side: its cookie opens nothing afterwards."""
    await sessions.close_session(pool, _digest(token))


_LISTED = 200  # a page of a brand's batches; older ones stay reachable through the API


async def latest_batches(pool: asyncpg.Pool, actor: Principal, kind: JobKind) -> list[Batch]:
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    return await batches.list_for_brand(pool, actor.brand_id, kind, _LISTED)
