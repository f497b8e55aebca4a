"""Brands manage the resolver's links: /v1/products/{product_id}/links."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.world import World, bearer, expect

PAGE: dict[str, Any] = {"link_type": "gs1:pip", "href": "https://brand.example/p", "language": "en"}


def links_of(world: World, product: str = "a") -> str:
    chosen = world.product_a if product == "a" else world.product_b
    return f"/v1/products/{chosen['id']}/links"


async def add(
    client: httpx.AsyncClient, world: World, *, status: int = 201, **body: Any
) -> dict[str, Any]:
    response = await client.post(links_of(world), json=body, headers=bearer(world.brand_a))
    return await expect(response, status)


async def count_links(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        found: int = await conn.fetchval("select count(*) from resolver_links")
        return found
    finally:
        await conn.close()


async def test_a_brand_adds_lists_changes_and_deletes_links(
    client: httpx.AsyncClient, world: World
) -> None:
    page = await add(client, world, **PAGE)
    assert page["link_type"] == "gs1:pip"
    assert page["link_type_iri"] == "https://gs1.org/voc/pip"
    assert page["title"] == "Product information page"  # the type's name when none given
    assert (page["level"], page["lot"], page["serial"]) == ("product", None, None)
    lot = await add(client, world, link_type="gs1:certificationInfo", lot="L7",
                    href="https://brand.example/c", title="Certificate")  # fmt: skip
    unit = await add(client, world, link_type="gs1:recallStatus", serial="S1",
                     href="https://brand.example/r")  # fmt: skip
    assert (lot["level"], unit["level"]) == ("lot", "unit")

    listed = await expect(await client.get(links_of(world), headers=bearer(world.brand_a)), 200)
    assert [item["id"] for item in listed["items"]] == [lot["id"], page["id"], unit["id"]]
    only_lot = await client.get(
        links_of(world), params={"lot": "L7"}, headers=bearer(world.brand_a)
    )
    assert [item["id"] for item in (await expect(only_lot, 200))["items"]] == [lot["id"]]

    changed = await expect(
        await client.patch(
            f"{links_of(world)}/{page['id']}",
            json={"title": "Night serum", "language": "fr", "media_type": "text/html"},
            headers=bearer(world.brand_a),
        ),
        200,
    )
    assert (changed["title"], changed["language"], changed["href"]) == (
        "Night serum", "fr", PAGE["href"],
    )  # fmt: skip
    cleared = await expect(
        await client.patch(
            f"{links_of(world)}/{page['id']}", json={"language": None},
            headers=bearer(world.brand_a),
        ),
        200,
    )  # fmt: skip
    assert cleared["language"] is None
    assert cleared["media_type"] == "text/html"

    gone = await client.delete(f"{links_of(world)}/{page['id']}", headers=bearer(world.brand_a))
    assert gone.status_code == 204
    again = await client.delete(f"{links_of(world)}/{page['id']}", headers=bearer(world.brand_a))
    assert again.status_code == 404


async def test_a_new_default_replaces_the_old_one_at_its_level(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await add(client, world, **PAGE, is_default=True)
    unit_default = await add(client, world, **PAGE, serial="S1", is_default=True)
    second = await add(client, world, link_type="gs1:instructions",
                       href="https://brand.example/i", is_default=True)  # fmt: skip
    listed = await expect(await client.get(links_of(world), headers=bearer(world.brand_a)), 200)
    defaults = {item["id"] for item in listed["items"] if item["is_default"]}
    assert defaults == {second["id"], unit_default["id"]}  # one per level
    made_default = await expect(
        await client.patch(f"{links_of(world)}/{first['id']}", json={"is_default": True},
                           headers=bearer(world.brand_a)),
        200,
    )  # fmt: skip
    assert made_default["is_default"]
    listed = await expect(await client.get(links_of(world), headers=bearer(world.brand_a)), 200)
    assert {i["id"] for i in listed["items"] if i["is_default"]} == {
        first["id"],
        unit_default["id"],
    }
    resolved = await client.get(f"/01/{world.product_a['gtin']}")
    assert resolved.headers["location"] == PAGE["href"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PAGE, "link_type": "gs1:madeUp"}, "link_type"),
        ({**PAGE, "link_type": "pip"}, "link_type"),
        ({**PAGE, "href": "http://brand.example/p"}, "href"),
        ({**PAGE, "href": "https://"}, "href"),
        ({**PAGE, "language": "French"}, "language"),
        ({**PAGE, "media_type": "pdf"}, "media_type"),
        ({**PAGE, "context": "a b"}, "context"),
        ({**PAGE, "lot": "L1", "serial": "S1"}, "serial"),
        ({**PAGE, "serial": "S 1"}, "serial"),  # a space is no GS1 (21) character
        ({**PAGE, "colour": "red"}, "colour"),
    ],
)
async def test_bad_input_is_a_problem_and_changes_nothing(
    client: httpx.AsyncClient, world: World, dsn: str, body: dict[str, Any], field: str
) -> None:
    problem = await add(client, world, status=422, **body)
    assert problem["type"] in ("/problems/invalid-input",)
    assert problem["errors"][0]["field"] == field
    assert await count_links(dsn) == 0


async def test_a_bad_change_changes_nothing(client: httpx.AsyncClient, world: World) -> None:
    page = await add(client, world, **PAGE)
    refused = await client.patch(
        f"{links_of(world)}/{page['id']}",
        json={"href": "ftp://x", "title": "New"},
        headers=bearer(world.brand_a),
    )
    assert (await expect(refused, 422))["errors"][0]["field"] == "href"
    listed = await expect(await client.get(links_of(world), headers=bearer(world.brand_a)), 200)
    assert listed["items"][0]["title"] == "Product information page"


async def test_another_brand_sees_and_touches_nothing(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    page = await add(client, world, **PAGE)
    other = bearer(world.brand_b)
    a_links = links_of(world)
    for response in (
        await client.get(a_links, headers=other),
        await client.post(a_links, json=PAGE, headers=other),
        await client.patch(f"{a_links}/{page['id']}", json={"title": "x"}, headers=other),
        await client.delete(f"{a_links}/{page['id']}", headers=other),
        # its own product's path with brand A's link id
        await client.patch(
            f"{links_of(world, 'b')}/{page['id']}", json={"title": "x"}, headers=other
        ),
        await client.delete(f"{links_of(world, 'b')}/{page['id']}", headers=other),
    ):
        assert response.status_code == 404, response.text
    assert await count_links(dsn) == 1
    for who, status in ((world.station, 403), (world.admin, 403), ("garbage", 401)):
        assert (await client.get(a_links, headers=bearer(who))).status_code == status
    assert (await client.get(a_links)).status_code == 401


async def test_links_are_in_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/v1/products/{product_id}/links"]) == {"get", "post"}
    assert set(paths["/v1/products/{product_id}/links/{link_id}"]) == {"patch", "delete"}
