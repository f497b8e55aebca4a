"""A small world of keys and objects for API tests, built through the API itself."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import httpx


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def gtin14(body: str) -> str:
    """A valid GTIN-14 from 13 digits, with its check digit."""
    digits = [int(c) for c in body]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return body + str((10 - total % 10) % 10)


# GS1 company prefixes of the test world's brand A: a product registers only under its
# brand's prefixes. TEST_PREFIX holds README's GTIN 09506000134352 and new_gtin()'s by
# default; EXAMPLE_PREFIXES hold GTINs that tests spell out.
TEST_PREFIX = "950600"
EXAMPLE_PREFIXES = ("400638", "0000000000")


def new_gtin(prefix: str = TEST_PREFIX) -> str:
    """A random valid GTIN-14 under ``prefix`` (any indicator digit but 9)."""
    free = 12 - len(prefix)
    number = uuid.uuid4().int
    item = f"{number // 9 % 10**free:0{free}d}" if free else ""
    return gtin14(f"{number % 9}{prefix}{item}")


def prefix_of(brand_key: str) -> str:
    """The GS1 company prefix make_brand assigned to the brand of ``brand_key`` (6 digits
    from its hash: two brands of one test share one once in about a million)."""
    digest = int(hashlib.sha256(brand_key.encode()).hexdigest(), 16)
    prefix = f"{100_000 + digest % 800_000}"
    taken = (TEST_PREFIX, *EXAMPLE_PREFIXES)
    return prefix if prefix not in taken else f"{int(prefix) + 1}"


@dataclass
class World:
    admin: str
    brand_a: str
    brand_a_id: str
    brand_b: str
    brand_b_id: str
    station: str
    site_id: str
    product_a: dict[str, Any]
    product_b: dict[str, Any]


async def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


async def make_brand(
    client: httpx.AsyncClient, admin: str, prefixes: tuple[str, ...] = ()
) -> tuple[str, str]:
    """A brand holding ``prefixes`` and a prefix of its own (``prefix_of`` its key)."""
    name = f"brand-{uuid.uuid4().hex[:8]}"
    r = await client.post(
        "/v1/brands", json={"name": name, "gs1_prefixes": list(prefixes)}, headers=bearer(admin)
    )
    body = await expect(r, 201)
    brand_id, key = body["brand"]["id"], body["api_key"]["key"]
    await expect(
        await client.post(
            f"/v1/brands/{brand_id}/gs1-prefixes",
            json={"prefix": prefix_of(key)},
            headers=bearer(admin),
        ),
        201,
    )
    return brand_id, key


async def make_product(client: httpx.AsyncClient, brand_key: str, **extra: Any) -> dict[str, Any]:
    """A product of the brand, by default under the brand's own prefix."""
    payload = {"gtin": new_gtin(prefix_of(brand_key)), "name": "Widget", **extra}
    return await expect(
        await client.post("/v1/products", json=payload, headers=bearer(brand_key)), 201
    )


async def make_station(
    client: httpx.AsyncClient, admin: str, **site: Any
) -> tuple[dict[str, Any], str]:
    """A new site (``site``'s fields, a unique name unless given) and a station key of it."""
    body = {"name": f"site-{uuid.uuid4().hex[:8]}", **site}
    made = await expect(await client.post("/v1/sites", json=body, headers=bearer(admin)), 201)
    key = await expect(
        await client.post(
            "/v1/api-keys", json={"role": "station", "site_id": made["id"]}, headers=bearer(admin)
        ),
        201,
    )
    return made, key["key"]


async def build_world(client: httpx.AsyncClient, admin: str) -> World:
    a_id, a_key = await make_brand(client, admin, (TEST_PREFIX, *EXAMPLE_PREFIXES))
    b_id, b_key = await make_brand(client, admin)
    site, station = await make_station(client, admin, stations=["s1"])
    return World(
        admin=admin,
        brand_a=a_key,
        brand_a_id=a_id,
        brand_b=b_key,
        brand_b_id=b_id,
        station=station,
        site_id=site["id"],
        product_a=await make_product(client, a_key),
        product_b=await make_product(client, b_key),
    )


async def finished_batch(
    client: httpx.AsyncClient, key: str, location: str, ends: tuple[str, ...] = ("done",)
) -> dict[str, Any]:
    """The batch at ``location`` once its status is one of ``ends`` (a job: it finishes in
    the background)."""
    import asyncio

    for _ in range(400):
        batch: dict[str, Any] = (await client.get(location, headers=bearer(key))).json()
        if batch["status"] in ends:
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch still {batch['status']}")


async def issue_batch(
    client: httpx.AsyncClient, world: World, count: int, **fields: Any
) -> dict[str, Any]:
    """A finished batch of ``count`` codes of product A (``fields``: format, lot, ...)."""
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/code-batches",
        json={"count": count, **fields},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 202, r.text
    return await finished_batch(client, world.brand_a, r.headers["location"])


async def issue_codes(
    client: httpx.AsyncClient, world: World, count: int, fmt: str = "transparency", **extra: Any
) -> list[dict[str, str]]:
    """Issue ``count`` codes for product A and return their CSV rows (code, symbol, ...)."""
    import csv
    import io

    batch = await issue_batch(client, world, count, format=fmt, **extra)
    location = f"/v1/code-batches/{batch['id']}"
    text = (await client.get(f"{location}/codes.csv", headers=bearer(world.brand_a))).text
    return list(csv.DictReader(io.StringIO(text)))


async def claim(
    client: httpx.AsyncClient, world: World, scan: str, *, gtin: str | None = None,
    shipment: str = "S-1", key: str | None = None, idem: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A station's single claim of ``scan`` (for product A unless ``gtin``); its reply."""
    headers = bearer(key or world.station)
    if idem:
        headers["Idempotency-Key"] = idem
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": scan, "gtin": gtin or world.product_a["gtin"], "shipment_id": shipment},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def ship(client: httpx.AsyncClient, world: World, code: str) -> None:
    """Pass ``code`` (of product A) at fulfilment."""
    reply = await claim(client, world, code, shipment="S")
    assert reply["result"] == "pass", reply


async def sell_checked_only(client: httpx.AsyncClient, world: World) -> None:
    """Product A is sold only through checked fulfilment (``channel: checked_only``)."""
    r = await client.patch(
        f"/v1/products/{world.product_a['id']}",
        json={"channel": "checked_only"},
        headers=bearer(world.brand_a),
    )
    assert r.json()["channel"] == "checked_only", r.text
