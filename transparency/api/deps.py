"""Named dependencies: the pool and the authenticated caller, by role.

Every dependency is ``async def``, even the ones that only read request state: FastAPI
runs a plain ``def`` dependency in a worker thread, a thread hop per request each.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Request

from transparency.domain.identity import Principal, Role
from transparency.jobs import JobRunner
from transparency.keyring import KeyRing
from transparency.services.auth import KeyCache, authenticate
from transparency.services.fulfilment import Context
from transparency.settings import Settings


async def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.state.pool
    return pool


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]


async def get_keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.state.keyring
    return keyring


async def get_runner(request: Request) -> JobRunner:
    runner: JobRunner = request.state.runner
    return runner


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_context(request: Request) -> Context:
    state = request.state
    return Context(state.pool, state.keyring, state.events)


Keys = Annotated[KeyRing, Depends(get_keyring)]
Ctx = Annotated[Context, Depends(get_context)]
Runner = Annotated[JobRunner, Depends(get_runner)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.state.key_cache
    return cache


KeyCacheDep = Annotated[KeyCache, Depends(get_key_cache)]


async def get_principal(
    pool: Pool,
    cache: KeyCacheDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    return await authenticate(pool, authorization, cache)


def _role(*roles: Role) -> object:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(*roles)
        return principal

    return Depends(check)


async def get_optional_principal(
    pool: Pool,
    cache: KeyCacheDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal | None:
    """No key is a customer; a key must be valid."""
    return None if authorization is None else await authenticate(pool, authorization, cache)


AnyKey = Annotated[Principal, Depends(get_principal)]
OptionalKey = Annotated[Principal | None, Depends(get_optional_principal)]
AdminKey = Annotated[Principal, _role(Role.ADMIN)]
BrandKey = Annotated[Principal, _role(Role.BRAND)]
StationKey = Annotated[Principal, _role(Role.STATION)]
