"""Brand use cases on the resolver's links: list, add, change and delete the links of a
product, one of its lots or one of its units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from transparency.db import audit, links
from transparency.domain import gs1
from transparency.domain.errors import InvalidInput, NotFound
from transparency.domain.identity import Principal, Role
from transparency.domain.resolver import BrandLink, Level, Link, check_link


@dataclass(frozen=True, slots=True)
class LinkFields:
    """What a brand says of a link; ``check_link`` turns it into a ``Link``."""

    link_type: str
    href: str
    title: str | None = None
    language: str | None = None
    media_type: str | None = None
    context: str | None = None
    is_default: bool = False

    def checked(self) -> Link:
        link = check_link(
            self.link_type, self.href, self.title, self.language, self.media_type, self.context
        )
        return Link(
            link.link_type,
            link.href,
            link.title,
            link.languages,
            link.media_type,
            link.context,
            self.is_default,
        )


def level_of(lot: str | None, serial: str | None) -> Level:
    """The level a lot or a serial names (neither: the product); both is refused."""
    if lot is not None and serial is not None:
        raise InvalidInput("a link is for a lot or for a unit, not both", field="serial")
    for field, ai, value in (("lot", "10", lot), ("serial", "21", serial)):
        if value is not None and not _valid_value(ai, value):
            raise InvalidInput(f"{value!r} is not a valid GS1 ({ai}) value", field=field)
    return Level.UNIT if serial is not None else Level.LOT if lot is not None else Level.PRODUCT


def _valid_value(ai: str, value: str) -> bool:
    try:
        gs1.parse_gs1(f"({ai}){value}")
    except InvalidInput:
        return False
    return True


def _brand(actor: Principal) -> UUID:
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    return actor.brand_id


async def list_links(
    pool: asyncpg.Pool,
    actor: Principal,
    product_id: UUID,
    *,
    lot: str | None = None,
    serial: str | None = None,
) -> list[BrandLink]:
    """The links of the caller's product (of one lot or unit when named)."""
    found = await links.list_owned(pool, _brand(actor), product_id, lot=lot, serial=serial)
    if found is None:
        raise NotFound(f"no product {product_id}")
    return found


async def add_link(
    pool: asyncpg.Pool,
    actor: Principal,
    product_id: UUID,
    fields: LinkFields,
    *,
    lot: str | None = None,
    serial: str | None = None,
) -> BrandLink:
    """A new link on the caller's product, lot or unit; a new default replaces the old."""
    brand_id = _brand(actor)
    level = level_of(lot, serial)
    link = fields.checked()
    async with pool.acquire() as conn, conn.transaction():
        made = await links.insert(
            conn,
            link_id=uuid4(),
            brand_id=brand_id,
            product_id=product_id,
            level=level,
            lot=lot,
            serial=serial,
            link=link,
        )
        if made is None:
            raise NotFound(f"no product {product_id}")
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="link.create",
            target=str(made.id),
            brand_id=brand_id,
            detail={"product_id": str(product_id), "level": level.value},
        )
    return made


async def update_link(
    pool: asyncpg.Pool,
    actor: Principal,
    product_id: UUID,
    link_id: UUID,
    changes: dict[str, Any],
) -> BrandLink:
    """Change the fields of the caller's link named in ``changes`` (its product and level
    stay); making it the default takes that from the level's old default."""
    brand_id = _brand(actor)
    async with pool.acquire() as conn, conn.transaction():
        current = await links.get_owned(conn, brand_id, product_id, link_id)
        if current is None:
            raise NotFound(f"no link {link_id}")
        was = current.link
        merged = {
            "link_type": was.link_type,
            "href": was.href,
            "title": was.title,
            "language": was.languages[0] if was.languages else None,
            "media_type": was.media_type,
            "context": was.context,
            "is_default": was.is_default,
            **changes,
        }
        if merged["link_type"] == was.link_type:
            merged["link_type"] = f"gs1:{was.link_type}"
        changed = await links.update_owned(
            conn, brand_id, product_id, link_id, LinkFields(**merged).checked()
        )
        if changed is None:
            raise NotFound(f"no link {link_id}")
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="link.update",
            target=str(link_id),
            brand_id=brand_id,
            detail={"fields": sorted(changes)},
        )
    return changed


async def delete_link(
    pool: asyncpg.Pool, actor: Principal, product_id: UUID, link_id: UUID
) -> None:
    """Delete the caller's link; another brand's is as missing as one that never was."""
    brand_id = _brand(actor)
    async with pool.acquire() as conn, conn.transaction():
        if not await links.delete_owned(conn, brand_id, product_id, link_id):
            raise NotFound(f"no link {link_id}")
        await audit.record(
            conn,
            api_key_id=actor.key_id,
            action="link.delete",
            target=str(link_id),
            brand_id=brand_id,
        )
