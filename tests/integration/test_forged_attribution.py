"""Forged scans naming a brand's key id are the brand's to see: recorded with its id,
counted on its dashboard by day, site and region, and listed for it alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from nacl.signing import SigningKey

from tests.support.world import World, bearer, expect, issue_codes, make_station
from transparency.domain import codes

WRONG_SECRET = b"not the brand's secret key......"


def forge(code: str) -> str:
    """The same payload (a real key id) with a tag or signature the key never made."""
    parsed = codes.parse(code)
    assert parsed.payload is not None
    if parsed.format is codes.CodeFormat.OFFLINE:
        return codes.sign_offline(parsed.payload, SigningKey.generate())
    return codes.sign_transparency(parsed.payload, WRONG_SECRET)


def unknown_key_forgery() -> str:
    """A well-formed code naming a key id no brand holds."""
    return codes.sign_transparency(codes.Payload(codes.MAX_KEY_ID - 7, 42), WRONG_SECRET)


async def station_at(client: httpx.AsyncClient, world: World, region: str) -> tuple[str, str]:
    """A new site in ``region`` and a station key of it: (site id, key)."""
    site, key = await make_station(client, world.admin, region=region, stations=["s"])
    return site["id"], key


async def claim(client: httpx.AsyncClient, world: World, key: str, scan: str) -> dict[str, Any]:
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": scan, "gtin": world.product_a["gtin"], "shipment_id": "F-1"},
        headers=bearer(key),
    )
    body: dict[str, Any] = await expect(r, 200)
    return body


async def check(client: httpx.AsyncClient, scan: str, region: str | None) -> dict[str, Any]:
    body = {"scan": scan, **({"region": region} if region else {})}
    answer: dict[str, Any] = await expect(await client.post("/v1/verify", json=body), 200)
    return answer


async def flush(app: FastAPI) -> None:
    await app.state.lifespan_state["events"].flush()


async def forged_page(
    client: httpx.AsyncClient, key: str, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    body = await expect(
        await client.get("/v1/forged-scans", params=params, headers=bearer(key)), 200
    )
    return body["items"], body["next_cursor"]


async def dashboard(client: httpx.AsyncClient, brand_id: str, key: str) -> dict[str, Any]:
    r = await client.get(f"/v1/brands/{brand_id}/dashboard", headers=bearer(key))
    return await expect(r, 200)


async def test_forgeries_are_listed_and_counted_for_the_brand_whose_key_they_name(
    client: httpx.AsyncClient, world: World, app: FastAPI, dsn: str
) -> None:
    (tp,) = await issue_codes(client, world, 1)
    (off,) = await issue_codes(client, world, 1, "offline")
    site_id, station = await station_at(client, world, "DE")
    forged_tp, forged_off, stranger = forge(tp["code"]), forge(off["code"]), unknown_key_forgery()
    for scan in (forged_tp, forged_off, stranger, "hello"):
        reply = await claim(client, world, station, scan)
        assert reply["result"] == "fail"
    for scan in (forged_tp, stranger, "hello"):
        assert (await check(client, scan, "FR"))["verdict"] == "not_authentic"
    assert (await check(client, forged_off, None))["verdict"] == "not_authentic"
    assert (await check(client, tp["code"], "FR"))["verdict"] != "not_authentic"
    await flush(app)

    items, next_cursor = await forged_page(client, world.brand_a)
    assert next_cursor is None
    seen = sorted((i["kind"], i["scanned"], i["site_id"], i["region"]) for i in items)
    assert seen == sorted([
        ("fulfilment", forged_tp, site_id, "DE"),  # a station's forgery is in its site's region
        ("fulfilment", forged_off, site_id, "DE"),
        ("customer", forged_tp, None, "FR"),
        ("customer", forged_off, None, None),
    ])  # fmt: skip
    times = [i["scanned_at"] for i in items]
    assert times == sorted(times, reverse=True)  # newest first
    assert await forged_page(client, world.brand_b) == ([], None)  # not brand B's

    board = await dashboard(client, world.brand_a_id, world.brand_a)
    today = date.today().isoformat()
    site_name = await station_site_name(dsn, site_id)
    assert board["forged"] == [
        {"day": today, "kind": "customer", "site_id": None, "site_name": None,
         "region": None, "scans": 1},
        {"day": today, "kind": "customer", "site_id": None, "site_name": None,
         "region": "FR", "scans": 1},
        {"day": today, "kind": "fulfilment", "site_id": site_id, "site_name": site_name,
         "region": "DE", "scans": 2},
    ]  # fmt: skip
    # Forgeries are about no product: the product's day is what it was, with its name.
    (day,) = [d for d in board["days"] if d["day"] == today]
    assert (day["product_id"], day["product_name"]) == (world.product_a["id"], "Widget")
    assert (day["issued"], day["customer_scans"], day["blocked"]) == (2, 1, {})
    for other in (world.brand_b, world.admin):
        board_b = await dashboard(client, world.brand_b_id, other)
        assert board_b["forged"] == board_b["days"] == []

    # A forgery naming no key of ours, and garbage, stay nobody's.
    conn = await asyncpg.connect(dsn)
    try:
        owners = await conn.fetch(
            "select code, kind, brand_id::text from scan_events where code = any($1::text[])",
            [stranger, "hello"],
        )
    finally:
        await conn.close()
    assert len(owners) == 4
    assert {r["brand_id"] for r in owners} == {None}


async def station_site_name(dsn: str, site_id: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        name: str = await conn.fetchval("select name from sites where id = $1", uuid.UUID(site_id))
    finally:
        await conn.close()
    return name


async def test_forged_scans_page_newest_first_from_since(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    rows = await issue_codes(client, world, 5)
    forged = [forge(r["code"]) for r in rows]
    for scan in forged:
        await check(client, scan, None)
    await flush(app)
    listed: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        items, cursor = await forged_page(client, world.brand_a, **params)
        listed += [i["scanned"] for i in items]
        pages += 1
        if cursor is None:
            break
    assert (listed, pages) == (forged[::-1], 3)

    everything, _ = await forged_page(client, world.brand_a)
    middle = datetime.fromisoformat(everything[2]["scanned_at"])
    since, _ = await forged_page(client, world.brand_a, since=middle.isoformat())
    assert [i["scanned"] for i in since] == forged[:1:-1]  # the three newest
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await forged_page(client, world.brand_a, since=later) == ([], None)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "MjAyNC0wMS0wMXxub3QtYS11dWlk"}, "cursor"),  # "2024-01-01|not-a-uuid"
        ({"since": "2024-01-01T00:00:00"}, "since"),  # no time zone: which midnight?
    ],
)
async def test_a_bad_cursor_or_since_is_a_problem(
    client: httpx.AsyncClient, world: World, params: dict[str, str], field: str
) -> None:
    r = await client.get("/v1/forged-scans", params=params, headers=bearer(world.brand_a))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "/problems/invalid-input"
    assert field in r.text


async def test_attributing_a_forgery_asks_the_database_nothing(
    client: httpx.AsyncClient, world: World, app: FastAPI, dsn: str
) -> None:
    """With every table that could name a key's brand locked by another session, a
    station's forged checks still answer (the benchmarked refusal stays query-free), and
    their events carry the brand once written."""
    (row,) = await issue_codes(client, world, 1)
    forged = forge(row["code"])
    await claim(client, world, world.station, row["code"])  # the station key is now cached
    holder = await asyncpg.connect(dsn)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(
            "lock table signing_keys, brands, units, products, sites in access exclusive mode"
        )
        probe = await asyncpg.connect(dsn)
        try:  # the lock is real: a query of those tables cannot run
            await probe.execute("set lock_timeout = '100ms'")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await probe.fetchval("select count(*) from signing_keys")
        finally:
            await probe.close()
        for _ in range(5):
            reply = await asyncio.wait_for(claim(client, world, world.station, forged), 10)
            assert reply["reason"] == "forged"
    finally:
        await holder.close()  # its transaction ends with it
    await flush(app)
    items, _ = await forged_page(client, world.brand_a)
    assert [(i["kind"], i["scanned"], i["site_id"]) for i in items] == [
        ("fulfilment", forged, world.site_id)
    ] * 5
