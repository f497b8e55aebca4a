"""Named dependencies: the pool, the authenticated caller by role, the customer limit.

Every dependency is ``async def``, even the ones that only read request state: FastAPI
runs a plain ``def`` dependency in a worker thread, a thread hop per request each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from transparency.domain.identity import Principal, Role
from transparency.domain.verification import CloneThresholds
from transparency.runtime.jobs import JobRunner
from transparency.runtime.keyring import KeyRing
from transparency.runtime.settings import Settings
from transparency.services.auth import KeyCache, authenticate
from transparency.services.context import Context


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
    return Context(state.pool, state.keyring, state.events, state.claims)


Keys = Annotated[KeyRing, Depends(get_keyring)]
Ctx = Annotated[Context, Depends(get_context)]
Runner = Annotated[JobRunner, Depends(get_runner)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.state.key_cache
    return cache


KeyCacheDep = Annotated[KeyCache, Depends(get_key_cache)]


async def get_principal(request: Request) -> Principal:
    """The caller of ``request``, from its Authorization header (401 when missing or bad).

    It reads the request alone, so lean routes (``lean.py``) call it as it is; the header
    is documented as the API's bearer key, not per route.
    """
    state = request.state
    return await authenticate(state.pool, request.headers.get("authorization"), state.key_cache)


async def get_optional_principal(request: Request) -> Principal | None:
    """No key is a customer; a key must be valid."""
    return None if "authorization" not in request.headers else await get_principal(request)


def requiring(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``role`` (403 otherwise)."""

    async def check(request: Request) -> Principal:
        principal = await get_principal(request)
        principal.require(role)
        return principal

    check.__name__ = f"{role.value}_key"
    return check


admin_key = requiring(Role.ADMIN)
brand_key = requiring(Role.BRAND)
station_key = requiring(Role.STATION)

AnyKey = Annotated[Principal, Depends(get_principal)]
OptionalKey = Annotated[Principal | None, Depends(get_optional_principal)]
AdminKey = Annotated[Principal, Depends(admin_key)]
BrandKey = Annotated[Principal, Depends(brand_key)]
StationKey = Annotated[Principal, Depends(station_key)]


def customer_of(request: Request) -> str:
    """The key of the calling client's customer budget: its address, or the one a trusted
    proxy names for it."""
    peer = request.client.host if request.client else None
    client: str = request.app.state.customer_limiter.client_of(
        peer, request.headers.getlist("x-forwarded-for")
    )
    return client


async def customer_limit(request: Request) -> None:
    """Take a token of the calling client's customer budget (429 when spent; a check past
    the process's budget is shed, 503, before the client's address is read)."""
    request.app.state.customer_limiter.hit(lambda: customer_of(request))


CustomerLimit = Annotated[None, Depends(customer_limit)]

# What `serve` adds to each request's ASGI scope extensions: {"set": f(bytes)}, which caps
# how much of the response the kernel holds for a client that is not reading (SO_SNDBUF).
SEND_BUFFER = "transparency.send_buffer"
# A label file is drawn at about 70 KB of PDF a second, a core's worth of bulk work; the
# kernel buffered up to 4 MB for a client that had stopped reading (loopback's autotuning),
# a minute of drawing for nobody. 32 KiB (doubled by Linux) still passes 320 KB/s over a
# 200 ms round trip.
_SLOW_SEND_BUFFER = 32 * 1024


async def slow_response(request: Request) -> None:
    """For a response drawn slowly by bulk work: the kernel holds little of it unsent, so
    a client that stops reading stops the work within a few hundred KB."""
    extension = request.scope.get("extensions", {}).get(SEND_BUFFER)
    if extension is not None:
        extension["set"](_SLOW_SEND_BUFFER)


SlowResponse = Annotated[None, Depends(slow_response)]


def thresholds(settings: Settings) -> CloneThresholds:
    return CloneThresholds(
        settings.clone_max_scans,
        settings.clone_max_regions,
        settings.clone_max_scans_after_shipping,
    )
