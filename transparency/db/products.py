"""Queries on products."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db.errors import translated
from transparency.db.pool import Conn
from transparency.domain.models import Product
from transparency.domain.verification import Channel

_COLUMNS = "id, brand_id, gtin, name, attributes, image_url, requires_check, created_at, channel"
# What a brand may change of a product after creating it (its GTIN and brand never).
UPDATABLE = ("name", "attributes", "image_url", "requires_check", "channel")


def _product(row: asyncpg.Record) -> Product:
    return Product(**{**row, "channel": Channel(row["channel"])})


async def insert(
    conn: Conn,
    *,
    product_id: UUID,
    brand_id: UUID,
    gtin: str,
    name: str,
    attributes: dict[str, Any],
    image_url: str | None,
    requires_check: bool,
    channel: Channel,
) -> Product | None:
    """The brand's new product; None when ``gtin`` (a GTIN-14) is under no GS1 company
    prefix assigned to the brand, whoever may hold it (nothing is inserted then)."""
    with translated(f"product with GTIN {gtin}"):
        row = await conn.fetchrow(
            # Named: Citus deparses an INSERT ... SELECT into a reference table with
            # parameters and RETURNING wrongly without it ("missing FROM-clause entry").
            "insert into products as p"
            " (id, brand_id, gtin, name, attributes, image_url, requires_check, channel)"
            " select $1::uuid, $2::uuid, $3::text, $4::text, $5::jsonb, $6::text, $7::boolean,"
            " $8::text"
            " where exists (select from brand_gs1_prefixes where brand_id = $2::uuid"
            "   and starts_with(substr($3::text, 2), prefix))"  # after the indicator digit
            f" returning {_COLUMNS}",
            product_id,
            brand_id,
            gtin,
            name,
            attributes,
            image_url,
            requires_check,
            channel.value,
        )
    return None if row is None else _product(row)


async def get_owned(conn: Conn | asyncpg.Pool, brand_id: UUID, product_id: UUID) -> Product | None:
    """The brand's product ``product_id``; None for a missing one and for another brand's."""
    row = await conn.fetchrow(
        f"select {_COLUMNS} from products where id = $1 and brand_id = $2", product_id, brand_id
    )
    return None if row is None else _product(row)


async def list_for_brand(
    conn: Conn, brand_id: UUID, *, after: tuple[datetime, UUID] | None, limit: int
) -> list[Product]:
    """A page of the brand's products in creation order, keyset-paginated."""
    if after is None:
        rows = await conn.fetch(
            f"select {_COLUMNS} from products where brand_id = $1 order by created_at, id limit $2",
            brand_id,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"select {_COLUMNS} from products where brand_id = $1"
            " and (created_at, id) > ($2, $3) order by created_at, id limit $4",
            brand_id,
            after[0],
            after[1],
            limit,
        )
    return [_product(r) for r in rows]


async def by_gtins(conn: Conn | asyncpg.Pool, gtins: list[str]) -> dict[str, Product]:
    """The products of ``gtins`` that exist, by GTIN."""
    rows = await conn.fetch(f"select {_COLUMNS} from products where gtin = any($1::text[])", gtins)
    return {row["gtin"]: _product(row) for row in rows}


async def update_owned(
    conn: Conn, brand_id: UUID, product_id: UUID, changes: dict[str, Any]
) -> Product | None:
    """Set the fields named in ``changes`` on the brand's product; None for a missing one
    and for another brand's (nothing changes then)."""
    fields = [f for f in UPDATABLE if f in changes]  # names from our list, never input
    assignments = ", ".join(f"{f} = ${i}" for i, f in enumerate(fields, start=3))
    values = [c.value if isinstance(c, Channel) else c for c in (changes[f] for f in fields)]
    row = await conn.fetchrow(
        f"update products set {assignments or 'id = id'} where id = $1 and brand_id = $2"
        f" returning {_COLUMNS}",
        product_id,
        brand_id,
        *values,
    )
    return None if row is None else _product(row)
