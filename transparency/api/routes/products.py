"""Brand endpoints on products."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from transparency.api.deps import BrandKey, Pool
from transparency.api.schemas import ProductIn, ProductOut, ProductPage, ProductPatch
from transparency.services import products

router = APIRouter(prefix="/v1/products", tags=["products"])


@router.post("", status_code=201, response_model=ProductOut)
async def create_product(body: ProductIn, pool: Pool, actor: BrandKey) -> ProductOut:
    product = await products.create_product(pool, actor, **body.model_dump())
    return ProductOut.of(product)


@router.get("", response_model=ProductPage)
async def list_products(
    pool: Pool,
    actor: BrandKey,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ProductPage:
    page, next_cursor = await products.list_products(pool, actor, cursor=cursor, limit=limit)
    return ProductPage(items=[ProductOut.of(p) for p in page], next_cursor=next_cursor)


@router.get("/{product_id}", response_model=ProductOut)
async def get_product(product_id: UUID, pool: Pool, actor: BrandKey) -> ProductOut:
    return ProductOut.of(await products.get_product(pool, actor, product_id))


@router.patch("/{product_id}", response_model=ProductOut)
async def update_product(
    product_id: UUID, body: ProductPatch, pool: Pool, actor: BrandKey
) -> ProductOut:
    return ProductOut.of(await products.update_product(pool, actor, product_id, body.changes()))
