"""The console's resolver links page: the session's brand only, and every form's CSRF."""

from __future__ import annotations

import httpx

from tests.support.console import csrf_in, signed_in
from tests.support.world import World, bearer, expect


async def test_the_links_page_adds_and_deletes_with_the_session_brand(
    client: httpx.AsyncClient, world: World
) -> None:
    csrf = await signed_in(client, world.brand_a)
    page = f"/console/products/{world.product_a['id']}/links"
    added = await client.post(
        page,
        data={"csrf": csrf, "link_type": "instructions", "href": "https://b.example/how",
              "language": "fr", "is_default": "yes"},
    )  # fmt: skip
    assert added.status_code == 303
    assert added.headers["location"] == page
    text = (await client.get(page)).text
    assert "<code>gs1:instructions</code>" in text
    assert "https://b.example/how" in text
    api = await expect(
        await client.get(
            f"/v1/products/{world.product_a['id']}/links", headers=bearer(world.brand_a)
        ),
        200,
    )
    (link,) = api["items"]
    assert (link["language"], link["is_default"]) == ("fr", True)
    resolved = await client.get(f"/01/{world.product_a['gtin']}")
    assert resolved.headers["location"] == "https://b.example/how"

    refused = await client.post(f"{page}/{link['id']}/delete", data={"csrf": "forged"})
    assert refused.status_code == 403
    deleted = await client.post(f"{page}/{link['id']}/delete", data={"csrf": csrf_in(text)})
    assert deleted.status_code == 303
    assert "<code>gs1:instructions</code>" not in (await client.get(page)).text


async def test_another_brands_product_is_not_found(client: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in(client, world.brand_a)
    other = f"/console/products/{world.product_b['id']}/links"
    assert (await client.get(other)).status_code == 404
    posted = await client.post(
        other, data={"csrf": csrf, "link_type": "pip", "href": "https://b.example/"}
    )
    assert posted.status_code == 404


async def test_bad_input_is_a_page_that_says_why(client: httpx.AsyncClient, world: World) -> None:
    csrf = await signed_in(client, world.brand_a)
    page = f"/console/products/{world.product_a['id']}/links"
    refused = await client.post(
        page, data={"csrf": csrf, "link_type": "pip", "href": "http://b.example/"}
    )
    assert refused.status_code == 422
    assert "the target must be an https URL" in refused.text
    assert "<code>gs1:pip</code>" not in (await client.get(page)).text
