"""Brand endpoints on the resolver's links: ``/v1/products/{product_id}/links``.

A link is for the product, one of its lots (``lot``) or one of its units (``serial``);
the resolver at ``/01/{gtin}...`` serves them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from transparency.api.deps import BrandKey, Pool
from transparency.api.schemas import Body
from transparency.domain.resolver import BrandLink, Level, link_type_iri
from transparency.services import links
from transparency.services.links import LinkFields

router = APIRouter(prefix="/v1/products/{product_id}/links", tags=["resolver links"])

# Lots and serials are GS1 (10) and (21) values: up to 20 characters.
Qualifier = Annotated[str | None, Query(min_length=1, max_length=20)]


class LinkIn(Body):
    link_type: str = Field(
        max_length=200,
        examples=["gs1:pip"],
        description="A GS1 Web Vocabulary link type: gs1:pip, gs1:instructions, "
        "gs1:recallStatus, gs1:certificationInfo, ... (or its https://gs1.org/voc/ IRI).",
    )
    href: str = Field(max_length=2000, description="The target: an https URL.")
    title: str | None = Field(
        default=None, max_length=200, description="Shown to people; default: the type's name."
    )
    language: str | None = Field(
        default=None, max_length=5, examples=["fr"], description="The target's language."
    )
    media_type: str | None = Field(default=None, max_length=127, examples=["text/html"])
    context: str | None = Field(default=None, max_length=64, examples=["FR"])
    is_default: bool = Field(
        default=False,
        description="Where a request that asks for nothing in particular goes; replaces the "
        "level's previous default. Without one, the service's verification page is.",
    )
    lot: str | None = Field(default=None, min_length=1, max_length=20)
    serial: str | None = Field(default=None, min_length=1, max_length=20)

    def fields(self) -> LinkFields:
        return LinkFields(**self.model_dump(exclude={"lot", "serial"}))


class LinkPatch(Body):
    """The fields to change; a field left out keeps its value."""

    link_type: str | None = Field(default=None, max_length=200)
    href: str | None = Field(default=None, max_length=2000)
    title: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=5)
    media_type: str | None = Field(default=None, max_length=127)
    context: str | None = Field(default=None, max_length=64)
    is_default: bool | None = None

    def changes(self) -> dict[str, object]:
        found = {name: getattr(self, name) for name in self.model_fields_set}
        # Only the optional attributes can be cleared; the rest keep their value if null.
        return {
            k: v
            for k, v in found.items()
            if v is not None or k in ("title", "language", "media_type", "context")
        }


class LinkOut(BaseModel):
    id: UUID
    product_id: UUID
    gtin: str
    level: Level
    lot: str | None
    serial: str | None
    link_type: str = Field(examples=["gs1:pip"])
    link_type_iri: str = Field(examples=["https://gs1.org/voc/pip"])
    href: str
    title: str
    language: str | None
    media_type: str | None
    context: str | None
    is_default: bool
    created_at: datetime

    @classmethod
    def of(cls, product_id: UUID, kept: BrandLink) -> LinkOut:
        link = kept.link
        return cls(
            id=kept.id,
            product_id=product_id,
            gtin=kept.gtin,
            level=kept.level,
            lot=kept.lot,
            serial=kept.serial,
            link_type=f"gs1:{link.link_type}",
            link_type_iri=link_type_iri(link.link_type),
            href=link.href,
            title=link.title,
            language=link.languages[0] if link.languages else None,
            media_type=link.media_type,
            context=link.context,
            is_default=link.is_default,
            created_at=kept.created_at,
        )


class LinkList(BaseModel):
    items: list[LinkOut]


@router.get("", response_model=LinkList)
async def list_links(
    product_id: UUID, pool: Pool, actor: BrandKey, lot: Qualifier = None, serial: Qualifier = None
) -> LinkList:
    found = await links.list_links(pool, actor, product_id, lot=lot, serial=serial)
    return LinkList(items=[LinkOut.of(product_id, kept) for kept in found])


@router.post("", status_code=201, response_model=LinkOut)
async def add_link(product_id: UUID, body: LinkIn, pool: Pool, actor: BrandKey) -> LinkOut:
    made = await links.add_link(
        pool, actor, product_id, body.fields(), lot=body.lot, serial=body.serial
    )
    return LinkOut.of(product_id, made)


@router.patch("/{link_id}", response_model=LinkOut)
async def update_link(
    product_id: UUID, link_id: UUID, body: LinkPatch, pool: Pool, actor: BrandKey
) -> LinkOut:
    changed = await links.update_link(pool, actor, product_id, link_id, body.changes())
    return LinkOut.of(product_id, changed)


@router.delete("/{link_id}", status_code=204, response_class=Response)
async def delete_link(product_id: UUID, link_id: UUID, pool: Pool, actor: BrandKey) -> Response:
    await links.delete_link(pool, actor, product_id, link_id)
    return Response(status_code=204)
