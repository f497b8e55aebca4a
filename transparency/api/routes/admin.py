"""Operator endpoints: brands, sites, API keys (admin keys only)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from transparency.api.deps import AdminKey, KeyCacheDep, Pool
from transparency.api.schemas import (
    ApiKeyIn,
    BrandCreated,
    BrandIn,
    BrandOut,
    Gs1PrefixesOut,
    Gs1PrefixIn,
    IssuedKeyOut,
    SiteIn,
    SiteOut,
)
from transparency.services import admin

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post("/brands", status_code=201, response_model=BrandCreated)
async def create_brand(body: BrandIn, pool: Pool, actor: AdminKey) -> BrandCreated:
    brand, key = await admin.create_brand(pool, actor, body.name, body.gs1_prefixes)
    return BrandCreated(
        brand=BrandOut.of(brand),
        api_key=IssuedKeyOut.issued(key),
        gs1_prefixes=sorted(body.gs1_prefixes),
    )


@router.post("/brands/{brand_id}/gs1-prefixes", status_code=201, response_model=Gs1PrefixesOut)
async def assign_gs1_prefix(
    brand_id: UUID, body: Gs1PrefixIn, pool: Pool, actor: AdminKey
) -> Gs1PrefixesOut:
    prefixes = await admin.assign_gs1_prefix(pool, actor, brand_id, body.prefix)
    return Gs1PrefixesOut(brand_id=brand_id, gs1_prefixes=prefixes)


@router.post("/sites", status_code=201, response_model=SiteOut)
async def create_site(body: SiteIn, pool: Pool, actor: AdminKey) -> SiteOut:
    return SiteOut.of(await admin.create_site(pool, actor, body.name, body.region, body.stations))


@router.post("/api-keys", status_code=201, response_model=IssuedKeyOut)
async def create_api_key(body: ApiKeyIn, pool: Pool, actor: AdminKey) -> IssuedKeyOut:
    issued = await admin.create_api_key(
        pool, actor, body.role, brand_id=body.brand_id, site_id=body.site_id, label=body.label
    )
    return IssuedKeyOut.issued(issued)


@router.delete("/api-keys/{key_id}", status_code=204, response_class=Response)
async def revoke_api_key(key_id: str, pool: Pool, cache: KeyCacheDep, actor: AdminKey) -> None:
    await admin.revoke_api_key(pool, actor, key_id, cache)
