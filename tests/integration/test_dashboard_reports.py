"""Customers' reports on the brand dashboard: counted on the day they were sent (UTC), with
the product of the unit they name, for the brand the code names and no other."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import httpx

from tests.support.console import issue
from tests.support.world import World, bearer, expect, issue_codes
from transparency.domain import codes

# A day of the past, so that nothing else the test does falls on it; 23:30 UTC is already
# the next day east of Greenwich: the dashboard's days are UTC days.
SENT = "2024-03-05 23:30:00+00"


def forged_of(code: str) -> str:
    """A real key id with a wrong tag: a forgery naming brand A's key."""
    payload = codes.parse(code).payload
    assert payload is not None
    return codes.sign_transparency(payload, b"f" * 32)


async def report(client: httpx.AsyncClient, code: str, place: str) -> dict[str, Any]:
    return await expect(await client.post("/v1/reports", data={"code": code, "place": place}), 201)


async def board(
    client: httpx.AsyncClient, brand_id: str, key: str, **span: str
) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/brands/{brand_id}/dashboard", params=span, headers=bearer(key))
    days: list[dict[str, Any]] = (await expect(r, 200))["days"]
    return days


def reported(days: list[dict[str, Any]]) -> list[tuple[str, str | None, int]]:
    return [(d["day"], d["product_id"], d["reports"]) for d in days if d["reports"]]


async def test_a_report_counts_on_its_day_for_its_brand_only(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    own, other = await issue_codes(client, world, 2)
    _, (b_code,) = await issue(client, world.brand_b, world.product_b["id"], 1)
    moved = await report(client, own["symbol"], "Shop on Main Street")
    await report(client, forged_of(other["code"]), "market stall")  # brand A's key id
    await report(client, b_code, "brand B's shop")
    await report(client, "hello", "nowhere")  # names no brand: on no brand's dashboard
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "update customer_reports set created_at = $1::text::timestamptz where id = $2",
            SENT,
            moved["id"],
        )
    finally:
        await conn.close()

    march = {"from": "2024-03-01", "to": "2024-03-10"}
    days = await board(client, world.brand_a_id, world.brand_a, **march)
    assert days == [
        {
            "product_id": world.product_a["id"],
            "product_name": world.product_a["name"],
            "day": "2024-03-05",
            "issued": 0,
            "passed": 0,
            "blocked": {},
            "customer_scans": 0,
            "suspicious": 0,
            "reports": 1,
        }
    ]
    admin = await board(client, world.brand_a_id, world.admin, **march)
    assert admin == days
    today = date.today().isoformat()
    # The forgery's report names a key id of the brand, and no unit: no product's.
    assert reported(await board(client, world.brand_a_id, world.brand_a)) == [(today, None, 1)]
    assert reported(await board(client, world.brand_b_id, world.brand_b)) == [
        (today, world.product_b["id"], 1)
    ]
    assert await board(client, world.brand_b_id, world.brand_b, **march) == []


async def test_the_dashboards_schema_documents_the_reports_series(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    answer = spec["paths"]["/v1/brands/{brand_id}/dashboard"]["get"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(spec["components"]["schemas"][ref]["properties"]) == {
        "brand_id", "from", "to", "days", "forged",
    }  # fmt: skip
    day = spec["components"]["schemas"]["DashboardDayOut"]["properties"]
    assert "GET /v1/reports" in day["reports"]["description"]
