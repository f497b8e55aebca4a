"""Brand products: create, read, list with cursor pagination."""

from __future__ import annotations

import json

import httpx

from tests.support.world import World, bearer, gtin14, make_product, new_gtin, prefix_of


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


def unassigned_prefix() -> str:
    """A 12-digit prefix no world brand holds (theirs start with 1-8, or are the fixed ones)."""
    import uuid

    return f"99{uuid.uuid4().int % 10**10:010d}"


async def test_a_brand_registers_no_gtin_outside_its_prefixes_and_learns_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    """Brand B cannot take brand A's GTINs, registered or not, and both refusals read
    alike: nothing tells B whether A holds one (before, B took A's unregistered GTIN, and
    a registered one answered 409)."""
    mine = world.product_a["gtin"]
    free = new_gtin(prefix_of(world.brand_a))  # under A's prefix, not registered by anyone
    answers = []
    for gtin in (mine, free):
        r = await client.post(
            "/v1/products", json={"gtin": gtin, "name": "x"}, headers=bearer(world.brand_b)
        )
        body = r.json()
        assert (r.status_code, body["type"]) == (422, "/problems/gtin-not-assigned"), r.text
        assert world.brand_a_id not in r.text
        body.pop("request_id", None)
        answers.append(json.dumps(body).replace(gtin, "<gtin>"))
    assert answers[0] == answers[1]
    listed = await client.get("/v1/products", headers=bearer(world.brand_b))
    assert [p["gtin"] for p in listed.json()["items"]] == [world.product_b["gtin"]]
    r = await client.post(  # the rightful owner still registers it
        "/v1/products", json={"gtin": free, "name": "x"}, headers=bearer(world.brand_a)
    )
    assert r.status_code == 201, r.text


async def test_a_brand_without_prefixes_registers_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post("/v1/brands", json={"name": "Bare"}, headers=bearer(world.admin))
    assert r.status_code == 201, r.text
    assert r.json()["gs1_prefixes"] == []
    key = r.json()["api_key"]["key"]
    r = await client.post(
        "/v1/products", json={"gtin": new_gtin(unassigned_prefix()), "name": "x"},
        headers=bearer(key),
    )  # fmt: skip
    assert (r.status_code, r.json()["type"]) == (422, "/problems/gtin-not-assigned")


async def test_an_operator_assigns_prefixes_that_never_overlap(
    client: httpx.AsyncClient, world: World
) -> None:
    prefix = unassigned_prefix()[:9]
    admin = bearer(world.admin)
    r = await client.post(
        "/v1/brands", json={"name": "Maison", "gs1_prefixes": [prefix]}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["gs1_prefixes"] == [prefix]
    brand_id, key = r.json()["brand"]["id"], r.json()["api_key"]["key"]
    r = await client.post(
        "/v1/products", json={"gtin": new_gtin(prefix), "name": "x"}, headers=bearer(key)
    )
    assert r.status_code == 201, r.text

    for overlapping in (prefix, prefix[:7], prefix + "12"):  # the same, shorter, longer
        r = await client.post(
            f"/v1/brands/{world.brand_b_id}/gs1-prefixes",
            json={"prefix": overlapping},
            headers=admin,
        )
        assert (r.status_code, r.json()["type"]) == (409, "/problems/already-exists"), r.text
    r = await client.post(  # a new brand with a taken prefix is not made at all
        "/v1/brands", json={"name": "Squatter", "gs1_prefixes": [prefix[:8]]}, headers=admin
    )
    assert r.status_code == 409, r.text
    r = await client.post(
        "/v1/brands", json={"name": "Squatter", "gs1_prefixes": []}, headers=admin
    )
    assert r.status_code == 201, r.text

    other = unassigned_prefix()
    r = await client.post(
        f"/v1/brands/{brand_id}/gs1-prefixes", json={"prefix": other}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"brand_id": brand_id, "gs1_prefixes": sorted([prefix, other])}


async def test_a_prefix_is_six_to_twelve_digits_for_an_existing_brand(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = bearer(world.admin)
    for bad in ("12345", "1234567890123", "95060a", ""):
        r = await client.post(
            f"/v1/brands/{world.brand_b_id}/gs1-prefixes", json={"prefix": bad}, headers=admin
        )
        assert (r.status_code, r.json()["type"]) == (422, "/problems/invalid-input"), bad
    r = await client.post(
        "/v1/brands/00000000-0000-0000-0000-000000000000/gs1-prefixes",
        json={"prefix": unassigned_prefix()},
        headers=admin,
    )
    assert (r.status_code, r.json()["type"]) == (404, "/problems/not-found"), r.text


async def test_a_duplicate_gtin_names_no_brand(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/products",
        json={"gtin": world.product_a["gtin"], "name": "again"},
        headers=bearer(world.brand_a),
    )
    assert (r.status_code, r.json()["type"]) == (409, "/problems/already-exists")
    assert world.brand_a_id not in r.text
