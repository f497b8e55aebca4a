"""Operator use cases: brands, sites, API keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg

from transparency.db import api_keys, audit, brands, sites
from transparency.db.pool import Conn
from transparency.domain.api_keys import ApiKeyToken, new_api_key
from transparency.domain.errors import AlreadyExists, InvalidInput, NotFound
from transparency.domain.identity import Principal, Role
from transparency.domain.models import ApiKey, Brand, Site
from transparency.services.auth import KeyCache


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just made: the record, and the token shown to the caller this once."""

    key: ApiKey
    token: ApiKeyToken


async def create_brand(
    pool: asyncpg.Pool, actor: Principal, name: str, gs1_prefixes: Sequence[str] = ()
) -> tuple[Brand, IssuedKey]:
    """A brand, its first key, and the GS1 company prefixes it may register GTINs under (all
    made, or none)."""
    actor.require(Role.ADMIN)
    token = new_api_key()
    async with pool.acquire() as conn, conn.transaction():
        brand = await brands.insert(conn, uuid4(), name)
        for prefix in gs1_prefixes:
            await _assign(conn, actor, brand.id, prefix)
        key = await api_keys.insert(
            conn, token, Role.BRAND, brand_id=brand.id, label=f"{name} (first key)"
        )
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="brand.create",
            target=str(brand.id),
            brand_id=brand.id,
        )
    return brand, IssuedKey(key, token)


async def assign_gs1_prefix(
    pool: asyncpg.Pool, actor: Principal, brand_id: UUID, prefix: str
) -> list[str]:
    """Assign a GS1 company prefix to a brand; returns all of the brand's prefixes."""
    actor.require(Role.ADMIN)
    async with pool.acquire() as conn, conn.transaction():
        await _assign(conn, actor, brand_id, prefix)
        return await brands.prefixes(conn, brand_id)


async def _assign(conn: Conn, actor: Principal, brand_id: UUID, prefix: str) -> None:
    if not await brands.assign_prefix(conn, brand_id, prefix):
        # Only operators see this: naming the overlap is what they need to resolve it.
        raise AlreadyExists(f"GS1 company prefix {prefix} overlaps a prefix already assigned")
    await audit.record(
        conn,
        api_key_id=actor.key_id,
        action="brand.gs1_prefix.assign",
        target=str(brand_id),
        brand_id=brand_id,
        detail={"prefix": prefix},
    )


async def create_site(
    pool: asyncpg.Pool, actor: Principal, name: str, region: str | None, stations: list[str]
) -> Site:
    actor.require(Role.ADMIN)
    if len(set(stations)) != len(stations):
        raise InvalidInput("station names must be unique within a site", field="stations")
    async with pool.acquire() as conn, conn.transaction():
        site = await sites.insert(conn, uuid4(), name, region, stations)
        await audit.record(conn, api_key_id=actor.key_id, action="site.create", target=str(site.id))
    return site


async def create_api_key(
    pool: asyncpg.Pool,
    actor: Principal,
    role: Role,
    *,
    brand_id: UUID | None,
    site_id: UUID | None,
    label: str | None,
) -> IssuedKey:
    actor.require(Role.ADMIN)
    needs = {Role.ADMIN: (False, False), Role.BRAND: (True, False), Role.STATION: (False, True)}
    if needs[role] != (brand_id is not None, site_id is not None):
        raise InvalidInput(
            "an admin key takes no scope, a brand key needs brand_id, a station key needs site_id",
            field="role",
        )
    token = new_api_key()
    async with pool.acquire() as conn, conn.transaction():
        key = await api_keys.insert(
            conn, token, role, brand_id=brand_id, site_id=site_id, label=label
        )
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="api_key.create",
            target=key.id,
            brand_id=brand_id,
            detail={"role": role.value},
        )
    return IssuedKey(key, token)


async def revoke_api_key(
    pool: asyncpg.Pool, actor: Principal, key_id: str, cache: KeyCache
) -> ApiKey:
    actor.require(Role.ADMIN)
    async with pool.acquire() as conn, conn.transaction():
        key = await api_keys.revoke(conn, key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}")
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="api_key.revoke",
            target=key_id,
            brand_id=key.brand_id,
        )
    cache.forget(key_id)  # other processes hear it through NOTIFY
    return key
