"""Authentication: from an Authorization header to a Principal."""

from __future__ import annotations

import asyncpg

from transparency.db import api_keys
from transparency.domain.api_keys import digest_matches, parse_api_key
from transparency.domain.errors import Unauthenticated
from transparency.domain.identity import Principal, Role


async def authenticate(pool: asyncpg.Pool, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthenticated("this endpoint needs an API key: Authorization: Bearer <key>")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise Unauthenticated("the Authorization header must be: Bearer <key>")
    token = parse_api_key(credentials)
    if token is None:
        raise Unauthenticated("the API key is not valid")
    row = await api_keys.credentials(pool, token.key_id)
    # Compare a digest even for unknown ids, so both paths take the same time.
    stored = row["secret_sha256"] if row is not None else bytes(32)
    if not digest_matches(stored, token) or row is None:
        raise Unauthenticated("the API key is not valid")
    return Principal(
        key_id=token.key_id,
        role=Role(row["role"]),
        brand_id=row["brand_id"],
        site_id=row["site_id"],
    )
