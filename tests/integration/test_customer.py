"""Customer verification: verdicts, facts, warnings, clone signals, rate limits."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.support.asgi import make_client
from tests.support.world import (
    World,
    bearer,
    issue_codes,
    make_product,
    sell_checked_only,
    ship,
)
from transparency.api.app import create_app
from transparency.api.pages import i18n
from transparency.api.schemas import CustomerAnswer
from transparency.db import migrate, scans
from transparency.db.pool import is_citus
from transparency.domain import codes
from transparency.domain.verification import CloneThresholds, Warning
from transparency.runtime.settings import Settings


def answer_of(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    # The lean routes build their answers by hand: every one must fit the published schema.
    CustomerAnswer.model_validate(answer, strict=True)
    return answer


async def verify(client: httpx.AsyncClient, scan: str, region: str | None = None) -> dict[str, Any]:
    body = {"scan": scan, **({"region": region} if region else {})}
    return answer_of(await client.post("/v1/verify", json=body))


async def verify_get(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    return answer_of(await client.get("/v1/verify", params={"code": code}))


async def suspicious(client: httpx.AsyncClient, world: World, code: str) -> bool:
    """What the brand sees of a code: its history's flag, from units.suspicious_at."""
    r = await client.get(f"/v1/codes/{code}/history", headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    flag: bool = r.json()["suspicious"]
    return flag


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
    assert (await verify_get(client, row["code"]))["code"] == row["code"]
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


async def flagged(dsn: str, code: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        found: bool = await conn.fetchval(
            "select suspicious_at is not null from units where code = $1", code
        )
        return found
    finally:
        await conn.close()


async def test_an_unshipped_unit_of_a_product_sold_anywhere_is_authentic(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    # Most brands sell through shops with no station: a unit no station shipped is normal.
    assert world.product_a["channel"] == "any"  # the default
    (row,) = await issue_codes(client, world, 1)
    answers = [await verify(client, row["code"]) for _ in range(3)]
    assert {(a["verdict"], tuple(a["warnings"])) for a in answers} == {("authentic", ())}
    assert not await flagged(dsn, row["code"])
    assert not await suspicious(client, world, row["code"])


async def test_an_unshipped_unit_of_a_checked_only_product_is_suspicious(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    await sell_checked_only(client, world)
    (row,) = await issue_codes(client, world, 1)
    answer = await verify(client, row["code"])
    assert answer["verdict"] == "suspicious"
    assert answer["warnings"] == ["not_shipped"]
    assert await flagged(dsn, row["code"])
    await ship(client, world, row["code"])  # shipped: the warning was about that alone
    assert (await verify(client, row["code"]))["warnings"] == []


async def test_a_products_channel_is_set_on_create_and_update(
    client: httpx.AsyncClient, world: World
) -> None:
    made = await make_product(client, world.brand_a, channel="checked_only")
    assert made["channel"] == "checked_only"
    url = f"/v1/products/{made['id']}"
    r = await client.patch(url, json={"channel": "any"}, headers=bearer(world.brand_a))
    assert (r.status_code, r.json()["channel"], r.json()["name"]) == (200, "any", made["name"])
    for bad in ({"channel": "mail_order"}, {"channel": None}, {"gtin": made["gtin"]}):
        r = await client.patch(url, json=bad, headers=bearer(world.brand_a))
        assert r.status_code == 422, r.text
        assert r.json()["type"] == "/problems/invalid-input"
    r = await client.patch(url, json={"channel": "checked_only"}, headers=bearer(world.brand_b))
    assert r.status_code == 404  # another brand's product is as missing as none
    r = await client.get(url, headers=bearer(world.brand_a))
    assert r.json()["channel"] == "any"  # neither the bad requests nor brand B changed it


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
    assert recalled["verdict"] == "recalled"  # never green: the recall says more than expiry
    expired = await verify(client, rows[2]["code"])
    assert (expired["verdict"], expired["warnings"]) == ("expired", ["expired"])
    assert expired["notice"] == {"reason": None, "instructions": None}


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


async def test_many_scans_after_shipping_turn_a_code_suspicious(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    allowed = settings.clone_max_scans_after_shipping  # the tests' own, not the default
    assert allowed != CloneThresholds().max_scans_after_shipping
    assert 0 < 2 * (allowed + 1) <= settings.clone_max_scans  # no other threshold in the way
    await sell_checked_only(client, world)
    fresh, early = await issue_codes(client, world, 2)
    await ship(client, world, fresh["code"])
    answers = [await verify_get(client, fresh["code"]) for _ in range(allowed)]
    assert {(a["verdict"], tuple(a["warnings"])) for a in answers} == {("authentic", ())}
    assert not await suspicious(client, world, fresh["code"])
    answer = await verify(client, fresh["symbol"])
    assert (answer["verdict"], answer["warnings"]) == ("suspicious", ["scanned_after_shipping"])
    assert await suspicious(client, world, fresh["code"])  # units.suspicious_at is set

    # Scans before shipment are another signal (not_shipped); they do not count here.
    for _ in range(allowed + 1):
        assert (await verify(client, early["code"]))["warnings"] == ["not_shipped"]
    await ship(client, world, early["code"])
    warnings = [(await verify(client, early["code"]))["warnings"] for _ in range(allowed + 1)]
    assert warnings == [[]] * allowed + [["scanned_after_shipping"]]


def test_every_warning_is_explained_in_every_language() -> None:
    for lang in i18n.LANGS:
        for warning in Warning:
            assert i18n.messages(lang).keys() >= {f"warning.{warning}", f"warning.{warning}.says"}


async def test_the_facts_the_brand_chose_to_show(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    product = await make_product(
        client,
        world.brand_a,
        name="Night serum",
        image_url="https://img.example/serum.png",
        attributes={"volume_ml": 50, "manufactured_at": "Lyon", "ingredients": ["water"]},
    )
    made = {"manufactured_on": "2025-03-01", "manufactured_at": "Grasse", "line": {"n": 4}}
    (row,) = await issue_codes(
        client, dataclasses.replace(world, product_a=product), 1,
        lot="L7", expiry="2030-01-31", attributes=made,
    )  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        brand = await conn.fetchval("select name from brands where id = $1", world.brand_a_id)
    finally:
        await conn.close()
    for answer in (await verify(client, row["symbol"]), await verify_get(client, row["code"])):
        assert answer["product"] == {
            "brand": brand,
            "name": "Night serum",
            "gtin": product["gtin"],
            "image_url": "https://img.example/serum.png",
        }
        # The batch's facts win over the product's; only text and numbers are shown.
        assert answer["unit"] == {
            "volume_ml": 50,
            "manufactured_at": "Grasse",
            "manufactured_on": "2025-03-01",
            "lot": "L7",
            "expiry": "2030-01-31",
        }


async def test_the_customer_endpoint_is_rate_limited_but_fulfilment_is_not(
    settings: Settings, world: World
) -> None:
    limited = settings.model_copy(update={"customer_burst": 3, "customer_rate_per_minute": 1})
    app = create_app(limited)
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        async with make_client(app) as http:
            answers = [await http.get("/v1/verify", params={"code": "x"}) for _ in range(5)]
            assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
            assert answer_of(answers[0])["reason"] == "malformed"
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


Counters = tuple[int, list[str], int]  # customer scans, distinct regions, since shipping


async def counters(dsn: str, code: str) -> tuple[Counters, Counters]:
    """A unit's scan counters, and the same three facts counted over its scan events."""
    conn = await asyncpg.connect(dsn)
    try:
        kept = await conn.fetchrow(
            "select customer_scans, scan_regions, scans_since_shipping from units"
            " where code = $1", code,
        )  # fmt: skip
        counted = await conn.fetchrow(
            "select count(s.code)::int,"
            " coalesce(array_agg(distinct s.region) filter (where s.region is not null), '{}'),"
            " (count(s.code) filter (where s.scanned_at > u.shipped_at))::int"
            " from units u left join scan_events s on s.code = u.code and s.kind = 'customer'"
            " where u.code = $1 group by u.code, u.shipped_at",
            code,
        )
    finally:
        await conn.close()
    assert kept is not None
    assert counted is not None
    return (kept[0], sorted(kept[1]), kept[2]), (counted[0], sorted(counted[1]), counted[2])


async def test_the_units_counters_equal_its_scan_history(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """The counters a check reads are kept by the statements that record scans: after
    customer scans in and out of regions, a pass, a reversal, a return and a restock, they
    equal what counting the code's scan events says."""
    (row,) = await issue_codes(client, world, 1)
    code = row["code"]
    station = bearer(world.station)

    async def station_does(path: str, body: dict[str, Any]) -> None:
        r = await client.post(path, json={"scan": code, **body}, headers=station)
        assert r.status_code == 200, r.text
        assert r.json().get("result", "pass") == "pass", r.text

    gtin = world.product_a["gtin"]

    def claim(shipment: str) -> tuple[str, dict[str, Any]]:
        return "/v1/fulfilment/verifications", {"gtin": gtin, "shipment_id": shipment}

    steps: list[Counters] = []
    plan: list[list[str | None] | tuple[str, dict[str, Any]]] = [
        ["FR", None, "FR", "DE"],  # before it ships: already used, not after shipping
        claim("S-1"),
        ["IT", "FR", None],
        ("/v1/fulfilment/reversals", {"shipment_id": "S-1"}),
        ["ES"],
        claim("S-2"),
        [None, "ES"],
        ("/v1/fulfilment/returns", {"action": "return", "shipment_id": "S-2"}),
        ["FR", "GB"],
        ("/v1/fulfilment/returns", {"action": "restock", "shipment_id": "S-2"}),
        ["DE"],
    ]
    for step in plan:
        if isinstance(step, list):
            for region in step:
                await verify(client, code, region)
        else:
            await station_does(*step)
        kept, counted = await counters(dsn, code)
        assert kept == counted, step
        steps.append(kept)
    assert steps[-1] == (13, ["DE", "ES", "FR", "GB", "IT"], 0)
    assert steps[6] == (10, ["DE", "ES", "FR", "IT"], 2)  # the two since it shipped again


async def test_a_check_costs_the_same_whatever_the_codes_history(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """A code with 200k scan events checks in the time a fresh code does, and the check's
    statement reads no scan event, whatever plan PostgreSQL chooses."""
    heavy, fresh = (r["code"] for r in await issue_codes(client, world, 2))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "insert into scan_events (code, id, kind, result, region)"
            " select $1, gen_random_uuid(), 'customer', 'scanned', 'FR'"
            " from generate_series(1, 200000)",
            heavy,
        )
        await conn.execute("analyze scan_events")
        took: dict[str, list[float]] = {heavy: [], fresh: []}
        for _ in range(15):  # interleaved, so a busy moment of the machine hits both alike
            for code in (heavy, fresh):
                start = time.perf_counter()
                assert await scans.customer_scan(conn, code, "FR") is not None
                took[code].append(time.perf_counter() - start)
        heavy_s, fresh_s = statistics.median(took[heavy]), statistics.median(took[fresh])
        assert heavy_s < 3 * fresh_s + 0.005, (heavy_s, fresh_s)

        # The statement the service sends: on Citus the function that runs it on the unit's
        # node, under plan_cache_mode=auto (a generic plan of a distributed function call
        # with parameters is refused by Citus, so the pool never forces one there).
        citus = await is_citus(conn)
        statement = scans._CUSTOMER_CITUS if citus else scans._CUSTOMER
        await conn.execute(f"prepare check_ (text, text) as {statement}")
        plans = []
        modes = ("force_custom_plan",) if citus else ("force_custom_plan", "force_generic_plan")
        for mode in modes:
            await conn.execute(f"set plan_cache_mode = {mode}")
            plans.append(
                await conn.fetchval(f"explain (format json) execute check_('{heavy}', 'FR')")
            )
    finally:
        await conn.close()

    def reads(node: dict[str, Any]) -> list[str]:
        """The scan_events partitions a plan node and its children read (an insert writes)."""
        own = node.get("Relation Name", "")
        found = (
            [own] if own.startswith("scan_events") and node["Node Type"] != "ModifyTable" else []
        )
        return found + [r for child in node.get("Plans", []) for r in reads(child)]

    for plan in plans:
        document = plan if isinstance(plan, list) else json.loads(plan)
        assert reads(document[0]["Plan"]) == []


async def test_the_counters_are_backfilled_from_the_scan_history(empty_dsn: str) -> None:
    """0010 gives units already scanned their counters, counted from their scan events."""
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate.migrate(conn, until="0009_idempotency_request")
        await conn.execute(
            "insert into units (code, brand_id, product_id, batch_id, state, shipped_at)"
            " select c, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),"
            " (case when c = 'A' then 'shipped' else 'active' end)::unit_state,"
            " case when c = 'A' then now() - interval '1 day' end"
            " from unnest(array['A', 'B', 'C']) as c"
        )
        events = [
            ("A", "2 days", "customer", "FR"),
            ("A", "1 day 1 hour", "fulfilment", None),
            ("A", "1 hour", "customer", "DE"),
            ("A", "50 minutes", "customer", None),
            ("A", "40 minutes", "customer", "FR"),
            ("B", "1 hour", "customer", "IT"),
            ("B", "30 minutes", "customer", "IT"),
        ]
        await conn.executemany(
            "insert into scan_events (code, id, scanned_at, kind, result, region)"
            " values ($1, gen_random_uuid(), now() - $2::text::interval, $3, 'x', $4)",
            events,
        )
        assert await migrate.migrate(conn, until="0010_unit_scan_counters") == [
            "0010_unit_scan_counters"
        ]
        rows = await conn.fetch(
            "select code, customer_scans, scan_regions, scans_since_shipping from units"
        )
    finally:
        await conn.close()
    assert {r["code"]: (r[1], sorted(r[2]), r[3]) for r in rows} == {
        "A": (4, ["DE", "FR"], 3),
        "B": (2, ["IT"], 0),
        "C": (0, [], 0),
    }
