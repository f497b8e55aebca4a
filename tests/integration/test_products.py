"""Brand products: create, read, list with cursor pagination."""

from __future__ import annotations

import httpx

from tests.support.world import World, bearer, gtin14, make_product


async def test_create_normalises_a_gtin13_to_gtin14(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post(
        "/v1/products",
        json={
            "gtin": "4006381333931",
            "name": "Pencil",
            "attributes": {"colour": "black"},
            "image_url": "https://example.com/p.png",
            "requires_check": False,
        },
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["gtin"] == "04006381333931"
    assert body["brand_id"] == world.brand_a_id
    assert body["attributes"] == {"colour": "black"}
    assert body["requires_check"] is False
    got = await client.get(f"/v1/products/{body['id']}", headers=bearer(world.brand_a))
    assert got.json() == body


async def test_list_pages_through_every_product_once(
    client: httpx.AsyncClient, world: World
) -> None:
    made = {world.product_a["id"]}
    for _ in range(6):
        made.add((await make_product(client, world.brand_a))["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/products", params=params, headers=bearer(world.brand_a))
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)


async def test_a_forged_cursor_is_invalid_input(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get(
        "/v1/products", params={"cursor": "bm9wZQ=="}, headers=bearer(world.brand_a)
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cursor"


async def test_non_digit_gtin_is_refused(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/products", json={"gtin": "40063813339x1", "name": "x"}, headers=bearer(world.brand_a)
    )
    assert r.status_code == 422
    assert r.json()["type"] == "/problems/invalid-gtin"


async def test_product_creation_is_audited(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    import asyncpg

    product = await make_product(client, world.brand_a, gtin=gtin14("0000000000042"))
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "select action, brand_id::text from audit_log where target = $1", product["id"]
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["action"], row["brand_id"]) == ("product.create", world.brand_a_id)
