"""A brand's profile: its own key reads and changes it; an operator names the brand."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from transparency.api.deps import AnyKey, BrandKey, Pool
from transparency.api.schemas import BrandProfileIn, BrandProfileOut
from transparency.services import brands

router = APIRouter(prefix="/v1", tags=["brands"])


@router.get("/brand/profile", response_model=BrandProfileOut)
async def own_profile(pool: Pool, actor: BrandKey) -> BrandProfileOut:
    return BrandProfileOut.of(await brands.get_profile(pool, actor, None))


@router.patch("/brand/profile", response_model=BrandProfileOut)
async def update_own_profile(body: BrandProfileIn, pool: Pool, actor: BrandKey) -> BrandProfileOut:
    return BrandProfileOut.of(await brands.update_profile(pool, actor, None, body.changes()))


@router.get("/brands/{brand_id}/profile", response_model=BrandProfileOut)
async def profile(brand_id: UUID, pool: Pool, actor: AnyKey) -> BrandProfileOut:
    return BrandProfileOut.of(await brands.get_profile(pool, actor, brand_id))


@router.patch("/brands/{brand_id}/profile", response_model=BrandProfileOut)
async def update_profile(
    brand_id: UUID, body: BrandProfileIn, pool: Pool, actor: AnyKey
) -> BrandProfileOut:
    return BrandProfileOut.of(await brands.update_profile(pool, actor, brand_id, body.changes()))
