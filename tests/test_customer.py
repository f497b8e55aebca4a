"""Customer verification: verdicts, facts, warnings, clone signals, rate limits."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_client
from tests.world import World, bearer, issue_codes
from transparency.api.app import create_app
from transparency.api.schemas import CustomerAnswer
from transparency.domain import codes
from transparency.settings import Settings


async def verify(client: httpx.AsyncClient, scan: str, region: str | None = None) -> dict[str, Any]:
    body = {"scan": scan, **({"region": region} if region else {})}
    r = await client.post("/v1/verify", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    # The lean route builds its answer by hand: every one must fit the published schema.
    CustomerAnswer.model_validate(answer, strict=True)
    return answer


async def test_an_authentic_unit_with_its_facts(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    (row,) = await issue_codes(client, world, 1, lot="L5", expiry="2030-01-31")
    await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S"},
        headers=bearer(world.station),
    )
    answer = await verify(client, row["symbol"], "FR")
    assert answer["verdict"] == "authentic"
    assert answer["code"] == row["code"]
    assert answer["product"]["name"] == world.product_a["name"]
    assert answer["product"]["gtin"] == world.product_a["gtin"]
    assert answer["unit"] == {"lot": "L5", "expiry": "2030-01-31"}
    assert answer["warnings"] == []
    get = await client.get("/v1/verify", params={"code": row["code"]})
    assert get.json()["code"] == row["code"]
    conn = await asyncpg.connect(dsn)
    try:
        state = await conn.fetchval("select state::text from units where code = $1", row["code"])
        scans = await conn.fetch(
            "select kind, region from scan_events where code = $1 order by scanned_at", row["code"]
        )
    finally:
        await conn.close()
    assert state == "shipped"  # a customer scan never changes a unit
    assert [(s["kind"], s["region"]) for s in scans] == [
        ("fulfilment", None),
        ("customer", "FR"),
        ("customer", None),
    ]


async def test_a_shipped_unit_is_authentic_without_warnings(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S"},
        headers=bearer(world.station),
    )
    assert r.json()["result"] == "pass"
    answer = await verify(client, row["code"])
    assert (answer["verdict"], answer["warnings"]) == ("authentic", [])


async def test_an_unshipped_unit_scanned_by_a_customer_is_suspicious(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    (row,) = await issue_codes(client, world, 1)
    answer = await verify(client, row["code"])
    assert answer["verdict"] == "suspicious"
    assert answer["warnings"] == ["already_used"]
    conn = await asyncpg.connect(dsn)
    try:
        flagged = await conn.fetchval(
            "select suspicious_at is not null from units where code = $1", row["code"]
        )
    finally:
        await conn.close()
    assert flagged


@pytest.mark.parametrize("scan", ["hello", "TP" + "0" * 28, "https://evil.example/t/TPXYZ"])
async def test_not_authentic(client: httpx.AsyncClient, scan: str) -> None:
    answer = await verify(client, scan)
    assert answer["verdict"] == "not_authentic"
    assert answer["product"] is None


async def test_forged_code_is_not_authentic(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    (row,) = await issue_codes(client, world, 1)
    payload = codes.parse(row["code"]).payload
    assert payload is not None
    forged = codes.sign_transparency(payload, b"f" * 32)
    answer = await verify(client, forged)
    assert (answer["verdict"], answer["reason"]) == ("not_authentic", "forged")


async def test_revoked_and_expired_and_recalled(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    rows = await issue_codes(client, world, 3, expiry="2020-01-31")
    for row in rows:
        await client.post(
            "/v1/fulfilment/verifications",
            json={"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S"},
            headers=bearer(world.station),
        )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("update units set state = 'stolen' where code = $1", rows[0]["code"])
        await conn.execute("update units set state = 'recalled' where code = $1", rows[1]["code"])
    finally:
        await conn.close()
    assert (await verify(client, rows[0]["code"]))["verdict"] == "revoked"
    recalled = await verify(client, rows[1]["code"])
    assert recalled["warnings"] == ["expired", "recalled"]
    assert (await verify(client, rows[2]["code"]))["warnings"] == ["expired"]


async def test_many_regions_turn_a_code_suspicious(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S"},
        headers=bearer(world.station),
    )
    verdicts = [(await verify(client, row["code"], region))["verdict"] for region in
                ("FR", "DE", "IT", "ES")]  # fmt: skip
    assert verdicts == ["authentic", "authentic", "authentic", "suspicious"]


async def test_the_customer_endpoint_is_rate_limited_but_fulfilment_is_not(
    settings: Settings, world: World
) -> None:
    limited = settings.model_copy(update={"customer_burst": 3, "customer_rate_per_minute": 1})
    app = create_app(limited)
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        async with make_client(app) as http:
            statuses = [(await http.get("/v1/verify", params={"code": "x"})).status_code
                        for _ in range(5)]  # fmt: skip
            assert statuses == [200, 200, 200, 429, 429]
            r = await http.get("/v1/verify", params={"code": "x"})
            assert r.headers["retry-after"].isdigit()
            assert r.json()["type"] == "/problems/rate-limited"
            for i in range(10):
                r = await http.post(
                    "/v1/fulfilment/verifications",
                    json={"scan": "x", "gtin": world.product_a["gtin"], "shipment_id": f"S{i}"},
                    headers=bearer(world.station),
                )
                assert r.status_code == 200
