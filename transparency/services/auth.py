"""Authentication: from an Authorization header to a Principal."""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

from transparency.db import api_keys
from transparency.domain.api_keys import digest_matches, parse_api_key
from transparency.domain.errors import Unauthenticated
from transparency.domain.identity import Principal
from transparency.runtime.notifications import Listener


@dataclass(slots=True)
class _Entry:
    digest: bytes
    principal: Principal
    checked_at: float  # time.monotonic() when the database last said the key was live


class KeyCache:
    """Live keys' digests and scopes, so that a request costs no query to authenticate.

    Revoking a key removes it here at once in the revoking process and, through NOTIFY on
    ``api_keys``, in every other one. A notification can be lost (PostgreSQL restarts, the
    listener's connection drops), so no entry is trusted longer than ``max_age`` seconds
    after the database last vouched for it: the listener's catch-up asks again for all of
    them in one query every half of that (``revalidate``), and an entry it could not
    renew is looked up again by the request that needs it. After a reconnect the cache is
    emptied, since any key may have been revoked unheard.
    """

    def __init__(self, limit: int = 10_000, max_age: float = 5.0) -> None:
        self.limit = limit
        self.max_age = max_age
        self._keys: dict[str, _Entry] = {}

    def get(self, key_id: str) -> tuple[bytes, Principal] | None:
        entry = self._keys.get(key_id)
        if entry is None or time.monotonic() - entry.checked_at > self.max_age:
            return None
        return entry.digest, entry.principal

    def put(self, key_id: str, digest: bytes, principal: Principal, checked_at: float) -> None:
        if len(self._keys) >= self.limit:
            self._keys.clear()
        self._keys[key_id] = _Entry(digest, principal, checked_at)

    def forget(self, key_id: str) -> None:
        self._keys.pop(key_id, None)

    def clear(self) -> None:
        self._keys.clear()

    async def revalidate(self, pool: asyncpg.Pool) -> None:
        """Ask the database which cached keys are still live; forget the others."""
        if not self._keys:
            return
        asked_at = time.monotonic()
        live = await api_keys.live_digests(pool, list(self._keys))
        for key_id, entry in list(self._keys.items()):
            if live.get(key_id) == entry.digest:
                entry.checked_at = max(entry.checked_at, asked_at)
            elif entry.checked_at < asked_at:  # not one put since by a fresher look-up
                del self._keys[key_id]

    def follow(self, listener: Listener, pool: asyncpg.Pool) -> None:
        async def catch_up(full: bool) -> None:
            if full:
                self.clear()
            else:
                await self.revalidate(pool)

        listener.on(api_keys.CHANNEL, self.forget, catch_up)


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
    asked_at = time.monotonic()
    found = await api_keys.credentials(pool, token.key_id)
    # Compare a digest even for unknown ids, so both paths take the same time.
    stored = found.secret_sha256 if found is not None else bytes(32)
    if not digest_matches(stored, token) or found is None:
        raise Unauthenticated("the API key is not valid")
    principal = Principal(
        key_id=token.key_id, role=found.role, brand_id=found.brand_id, site_id=found.site_id
    )
    if cache is not None:
        cache.put(token.key_id, stored, principal, asked_at)
    return principal
