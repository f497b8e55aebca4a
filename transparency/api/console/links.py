"""The console's page of a product's resolver links: list, add, make default, delete.

The same services as ``/v1/products/{product_id}/links``, with the session's brand; every
form carries the session's CSRF token and answers with a redirect back to the page.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from transparency.api.console import web
from transparency.api.console.web import Form, SignedIn, field, render
from transparency.api.deps import Pool, SettingsDep
from transparency.domain import resolver as r
from transparency.services import links, products
from transparency.services.links import LinkFields

router = APIRouter(
    prefix="/console/products", include_in_schema=False, route_class=web.ConsoleRoute
)


def _page(product_id: UUID) -> str:
    return f"/console/products/{product_id}/links"


@router.get("/{product_id}/links")
async def links_page(
    request: Request, product_id: UUID, pool: Pool, actor: SignedIn, settings: SettingsDep
) -> Response:
    product = await products.get_product(pool, actor, product_id)
    found = await links.list_links(pool, actor, product_id)
    return render(
        request, "links.html", "links.title", page="products", product=product, links=found,
        link_types=sorted(r.LINK_TYPES), resolver_url=f"{settings.public_url}/01/{product.gtin}",
    )  # fmt: skip


@router.post("/{product_id}/links")
async def add_link(product_id: UUID, pool: Pool, actor: SignedIn, form: Form) -> Response:
    fields = LinkFields(
        link_type=f"gs1:{field(form, 'link_type') or ''}",
        href=field(form, "href") or "",
        title=field(form, "title"),
        language=field(form, "language"),
        media_type=field(form, "media_type"),
        context=field(form, "context"),
        is_default=field(form, "is_default") == "yes",
    )
    await links.add_link(
        pool, actor, product_id, fields, lot=field(form, "lot"), serial=field(form, "serial")
    )
    return web.to(_page(product_id))


@router.post("/{product_id}/links/{link_id}/default")
async def make_default(
    product_id: UUID, link_id: UUID, pool: Pool, actor: SignedIn, _: Form
) -> Response:
    await links.update_link(pool, actor, product_id, link_id, {"is_default": True})
    return web.to(_page(product_id))


@router.post("/{product_id}/links/{link_id}/delete")
async def delete_link(
    product_id: UUID, link_id: UUID, pool: Pool, actor: SignedIn, _: Form
) -> Response:
    await links.delete_link(pool, actor, product_id, link_id)
    return web.to(_page(product_id))
