"""GET /v1/me: who a key is, for any valid key, so that no brand has to guess its id."""

from __future__ import annotations

import httpx
import pytest

from tests.support.world import World, bearer, expect, make_station


async def test_a_brand_key_learns_its_brand(client: httpx.AsyncClient, world: World) -> None:
    me = await expect(await client.get("/v1/me", headers=bearer(world.brand_a)), 200)
    assert me["key_id"] == world.brand_a.split("_")[1]
    assert me["role"] == "brand"
    assert me["brand"]["id"] == world.brand_a_id
    assert me["brand"]["name"].startswith("brand-")
    assert me["site"] is None
    # and with that id, its dashboard, without a guess
    r = await client.get(f"/v1/brands/{me['brand']['id']}/dashboard", headers=bearer(world.brand_a))
    assert r.status_code == 200


async def test_a_station_key_learns_its_site(client: httpx.AsyncClient, world: World) -> None:
    site, key = await make_station(client, world.admin)
    me = await expect(await client.get("/v1/me", headers=bearer(key)), 200)
    assert me == {
        "key_id": key.split("_")[1],
        "role": "station",
        "brand": None,
        "site": {"id": site["id"], "name": site["name"]},
    }


async def test_an_admin_key_is_an_admin(client: httpx.AsyncClient, world: World) -> None:
    me = await expect(await client.get("/v1/me", headers=bearer(world.admin)), 200)
    assert me == {
        "key_id": world.admin.split("_")[1],
        "role": "admin",
        "brand": None,
        "site": None,
    }


@pytest.mark.parametrize("key", [None, "tpk_aaaaaaaaaaaaaaaa_" + "b" * 32, "not-a-key"])
async def test_no_key_or_a_bad_one_is_401(
    client: httpx.AsyncClient, world: World, key: str | None
) -> None:
    r = await client.get("/v1/me", headers=bearer(key) if key else {})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/unauthenticated"


async def test_a_revoked_key_is_nobody(client: httpx.AsyncClient, world: World) -> None:
    key_id = world.brand_b.split("_")[1]
    await expect(await client.delete(f"/v1/api-keys/{key_id}", headers=bearer(world.admin)), 204)
    r = await client.get("/v1/me", headers=bearer(world.brand_b))
    assert r.status_code == 401
