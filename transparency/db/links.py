"""Queries on the resolver's links. Each brand query names the brand: through the
product's brand_id, another brand's product and links are as missing as absent ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db.errors import translated
from transparency.db.pool import Conn
from transparency.domain.resolver import BrandLink, Level, Link

_COLUMNS = (
    "l.id, p.brand_id, p.gtin, l.level, l.lot, l.serial, l.link_type, l.href, l.title,"
    " l.language, l.media_type, l.context, l.is_default, l.created_at"
)
# What a brand may change of a link after making it (its product and level never).
UPDATABLE = ("link_type", "href", "title", "language", "media_type", "context", "is_default")


@dataclass(frozen=True, slots=True)
class Resolution:
    """A GTIN's product, if one is registered, and its links at the levels asked for."""

    product_name: str | None
    links: list[BrandLink]


def _link(row: asyncpg.Record) -> BrandLink:
    return BrandLink(
        id=row["id"],
        brand_id=row["brand_id"],
        gtin=row["gtin"],
        level=Level(row["level"]),
        lot=row["lot"],
        serial=row["serial"],
        link=Link(
            link_type=row["link_type"],
            href=row["href"],
            title=row["title"],
            languages=(row["language"],) if row["language"] else (),
            media_type=row["media_type"],
            context=row["context"],
            is_default=row["is_default"],
        ),
        created_at=row["created_at"],
    )


async def for_request(
    pool: asyncpg.Pool | Conn, gtin: str, lot: str | None, serial: str | None
) -> Resolution:
    """The links of a Digital Link request: the product's, the lot's and the unit's, in the
    order they were made. One statement, by the products' unique GTIN."""
    rows = await pool.fetch(
        f"select p.name as product_name, {_COLUMNS}"
        " from products p left join resolver_links l on l.product_id = p.id"
        "   and (l.level = 'product' or (l.level = 'lot' and l.lot = $2)"
        "        or (l.level = 'unit' and l.serial = $3))"
        " where p.gtin = $1 order by l.created_at, l.id",
        gtin,
        lot,
        serial,
    )
    if not rows:
        return Resolution(None, [])
    return Resolution(rows[0]["product_name"], [_link(r) for r in rows if r["id"] is not None])


async def list_owned(
    conn: Conn | asyncpg.Pool,
    brand_id: UUID,
    product_id: UUID,
    *,
    lot: str | None,
    serial: str | None,
) -> list[BrandLink] | None:
    """The brand's links on its product (at one lot or unit when named); None when the
    product is missing or another brand's."""
    rows = await conn.fetch(
        f"select {_COLUMNS} from products p left join resolver_links l on l.product_id = p.id"
        "   and ($3::text is null or l.lot = $3) and ($4::text is null or l.serial = $4)"
        " where p.id = $1 and p.brand_id = $2 order by l.level, l.created_at, l.id",
        product_id,
        brand_id,
        lot,
        serial,
    )
    if not rows:
        return None
    return [_link(r) for r in rows if r["id"] is not None]


async def _clear_default(
    conn: Conn, product_id: UUID, level: Level, lot: str | None, serial: str | None
) -> None:
    await conn.execute(
        "update resolver_links set is_default = false where product_id = $1 and level = $2"
        " and lot is not distinct from $3 and serial is not distinct from $4 and is_default",
        product_id,
        level.value,
        lot,
        serial,
    )


async def insert(
    conn: Conn,
    *,
    link_id: UUID,
    brand_id: UUID,
    product_id: UUID,
    level: Level,
    lot: str | None,
    serial: str | None,
    link: Link,
) -> BrandLink | None:
    """The brand's new link on its product; None when the product is missing or another
    brand's (nothing changes then). A new default replaces the level's old one."""
    owned = await conn.fetchval(
        "select true from products where id = $1 and brand_id = $2 for update",
        product_id,
        brand_id,
    )
    if not owned:
        return None
    if link.is_default:
        await _clear_default(conn, product_id, level, lot, serial)
    with translated("a default link at this level"):
        await conn.execute(
            "insert into resolver_links (id, product_id, level, lot, serial, link_type, href,"
            " title, language, media_type, context, is_default)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            link_id,
            product_id,
            level.value,
            lot,
            serial,
            link.link_type,
            link.href,
            link.title,
            link.languages[0] if link.languages else None,
            link.media_type,
            link.context,
            link.is_default,
        )
    return await get_owned(conn, brand_id, product_id, link_id)


async def get_owned(
    conn: Conn | asyncpg.Pool, brand_id: UUID, product_id: UUID, link_id: UUID
) -> BrandLink | None:
    """The brand's link ``link_id`` on its product; None for a missing one and another
    brand's."""
    row = await conn.fetchrow(
        f"select {_COLUMNS} from resolver_links l join products p on p.id = l.product_id"
        " where l.id = $1 and l.product_id = $2 and p.brand_id = $3",
        link_id,
        product_id,
        brand_id,
    )
    return None if row is None else _link(row)


async def update_owned(
    conn: Conn, brand_id: UUID, product_id: UUID, link_id: UUID, link: Link
) -> BrandLink | None:
    """Replace what the link says by ``link`` (its product and level stay); None for a
    missing link and another brand's."""
    found = await conn.fetchrow(
        "select l.level, l.lot, l.serial from resolver_links l"
        " join products p on p.id = l.product_id"
        " where l.id = $1 and l.product_id = $2 and p.brand_id = $3 for update of l",
        link_id,
        product_id,
        brand_id,
    )
    if found is None:
        return None
    if link.is_default:
        await _clear_default(conn, product_id, Level(found["level"]), found["lot"], found["serial"])
    values: dict[str, Any] = {
        "link_type": link.link_type,
        "href": link.href,
        "title": link.title,
        "language": link.languages[0] if link.languages else None,
        "media_type": link.media_type,
        "context": link.context,
        "is_default": link.is_default,
    }
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(UPDATABLE, start=2))
    with translated("a default link at this level"):
        await conn.execute(
            f"update resolver_links set {assignments} where id = $1",
            link_id,
            *(values[name] for name in UPDATABLE),
        )
    return await get_owned(conn, brand_id, product_id, link_id)


async def delete_owned(conn: Conn, brand_id: UUID, product_id: UUID, link_id: UUID) -> bool:
    """Delete the brand's link; False when it is missing or another brand's."""
    deleted = await conn.fetchval(
        "delete from resolver_links l using products p where l.id = $1 and l.product_id = $2"
        " and p.id = l.product_id and p.brand_id = $3 returning l.id",
        link_id,
        product_id,
        brand_id,
    )
    return deleted is not None
