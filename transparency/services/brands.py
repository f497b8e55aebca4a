"""A brand's profile: how it presents itself to the customers who check its codes."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from transparency.db import audit, brands
from transparency.domain.errors import NotFound
from transparency.domain.identity import Principal, Role
from transparency.domain.models import BrandProfile


def _brand(actor: Principal, brand_id: UUID | None) -> UUID:
    """The brand whose profile the caller names: a brand key its own (None or its id), an
    admin any; another brand's is as missing as one that never was."""
    actor.require(Role.BRAND, Role.ADMIN)
    if actor.role is Role.BRAND:
        assert actor.brand_id is not None
        if brand_id is not None and brand_id != actor.brand_id:
            raise NotFound(f"no brand {brand_id}")
        return actor.brand_id
    if brand_id is None:
        raise NotFound("an admin key names the brand: /v1/brands/{brand_id}/profile")
    return brand_id


async def get_profile(pool: asyncpg.Pool, actor: Principal, brand_id: UUID | None) -> BrandProfile:
    brand = _brand(actor, brand_id)
    profile = await brands.profile(pool, brand)
    if profile is None:
        raise NotFound(f"no brand {brand}")
    return profile


async def update_profile(
    pool: asyncpg.Pool, actor: Principal, brand_id: UUID | None, changes: dict[str, str | None]
) -> BrandProfile:
    brand = _brand(actor, brand_id)
    async with pool.acquire() as conn, conn.transaction():
        profile = await brands.update_profile(conn, brand, changes)
        if profile is None:
            raise NotFound(f"no brand {brand}")
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="brand.profile.update",
            target=str(brand),
            brand_id=brand,
            detail={"fields": sorted(changes)},
        )
    return profile
