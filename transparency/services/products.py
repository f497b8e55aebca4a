"""Brand use cases on products."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from transparency.db import audit, products
from transparency.domain import cursors
from transparency.domain.errors import GtinNotAssigned, NotFound
from transparency.domain.gtin import normalize_gtin
from transparency.domain.identity import Principal, Role
from transparency.domain.models import Product
from transparency.domain.verification import Channel


async def create_product(
    pool: asyncpg.Pool,
    actor: Principal,
    *,
    gtin: str,
    name: str,
    attributes: dict[str, Any],
    image_url: str | None,
    requires_check: bool,
    channel: Channel = Channel.ANY,
) -> Product:
    """Register a product under one of the brand's GS1 company prefixes.

    A GTIN outside them is refused with the same answer whether or not another brand holds
    it, so that no brand can take another's GTIN, nor learn which GTINs others registered.
    """
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    gtin14 = normalize_gtin(gtin)
    async with pool.acquire() as conn, conn.transaction():
        product = await products.insert(
            conn,
            product_id=uuid4(),
            brand_id=actor.brand_id,
            gtin=gtin14,
            name=name,
            attributes=attributes,
            image_url=image_url,
            requires_check=requires_check,
            channel=channel,
        )
        if product is None:
            raise GtinNotAssigned(
                f"GTIN {gtin14} is not under a GS1 company prefix assigned to this brand"
                " (an operator assigns them)",
                field="gtin",
            )
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="product.create",
            target=str(product.id),
            brand_id=actor.brand_id,
            detail={"gtin": gtin14},
        )
    return product


async def update_product(
    pool: asyncpg.Pool, actor: Principal, product_id: UUID, changes: dict[str, Any]
) -> Product:
    """Change the caller's product (its name, facts, photo, check rule, channel); another
    brand's is as missing as one that never was."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    async with pool.acquire() as conn, conn.transaction():
        product = await products.update_owned(conn, actor.brand_id, product_id, changes)
        if product is None:
            raise NotFound(f"no product {product_id}")
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="product.update",
            target=str(product.id),
            brand_id=actor.brand_id,
            detail={"fields": sorted(changes)},
        )
    return product


async def get_product(pool: asyncpg.Pool, actor: Principal, product_id: UUID) -> Product:
    """The caller's product; another brand's is as missing as one that never was."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    product = await products.get_owned(pool, actor.brand_id, product_id)
    if product is None:
        raise NotFound(f"no product {product_id}")
    return product


async def list_products(
    pool: asyncpg.Pool, actor: Principal, *, cursor: str | None, limit: int
) -> tuple[list[Product], str | None]:
    """A page of the caller's products and the cursor of the next page, if any."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    after = None if cursor is None else cursors.decode(cursor)
    async with pool.acquire() as conn:
        page = await products.list_for_brand(conn, actor.brand_id, after=after, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return page, (cursors.encode(page[-1].created_at, page[-1].id) if more else None)
