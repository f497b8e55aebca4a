"""Authentication: from an Authorization header to a Principal."""

from __future__ import annotations

import asyncpg

from transparency.db import api_keys
from transparency.domain.api_keys import digest_matches, parse_api_key
from transparency.domain.errors import Unauthenticated
from transparency.domain.identity import Principal
from transparency.runtime.notifications import Listener


class KeyCache:
    """Live keys' digests and scopes, so that a request costs no query to authenticate.

    Revoking a key removes it here at once in the revoking process and, through NOTIFY on
    ``api_keys``, in every other one.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._keys: dict[str, tuple[bytes, Principal]] = {}

    def get(self, key_id: str) -> tuple[bytes, Principal] | None:
        return self._keys.get(key_id)

    def put(self, key_id: str, digest: bytes, principal: Principal) -> None:
        if len(self._keys) >= self.limit:
            self._keys.clear()
        self._keys[key_id] = (digest, principal)

    def forget(self, key_id: str) -> None:
        self._keys.pop(key_id, None)

    async def follow(self, listener: Listener) -> None:
        await listener.on(api_keys.CHANNEL, self.forget)


async def authenticate(
    pool: asyncpg.Pool, authorization: str | None, cache: KeyCache | None = None
) -> Principal:
    if not authorization:
        raise Unauthenticated("this endpoint needs an API key: Authorization: Bearer <key>")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise Unauthenticated("the Authorization header must be: Bearer <key>")
    token = parse_api_key(credentials)
    if token is None:
        raise Unauthenticated("the API key is not valid")
    cached = cache.get(token.key_id) if cache is not None else None
    if cached is not None:
        stored, principal = cached
        if not digest_matches(stored, token):
            raise Unauthenticated("the API key is not valid")
        return principal
    found = await api_keys.credentials(pool, token.key_id)
    # Compare a digest even for unknown ids, so both paths take the same time.
    stored = found.secret_sha256 if found is not None else bytes(32)
    if not digest_matches(stored, token) or found is None:
        raise Unauthenticated("the API key is not valid")
    principal = Principal(
        key_id=token.key_id, role=found.role, brand_id=found.brand_id, site_id=found.site_id
    )
    if cache is not None:
        cache.put(token.key_id, stored, principal)
    return principal
