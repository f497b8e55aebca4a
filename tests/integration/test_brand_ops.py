"""Brand operations: withdraw a code, a batch or a lot; a unit's history; the dashboard."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx
import pytest

from tests.support.world import World, bearer, issue_codes, sell_checked_only
from transparency.db.pool import connect
from transparency.domain.api_keys import parse_api_key


async def act(client: httpx.AsyncClient, world: World, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/units/actions", json={"reason": "test", **body}, headers=bearer(world.brand_a)
    )


async def fulfil(client: httpx.AsyncClient, world: World, code: str) -> dict[str, Any]:
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": code, "gtin": world.product_a["gtin"], "shipment_id": "S"},
        headers=bearer(world.station),
    )
    body: dict[str, Any] = r.json()
    return body


async def test_revoke_a_code_takes_effect_at_once(client: httpx.AsyncClient, world: World) -> None:
    rows = await issue_codes(client, world, 2)
    r = await act(client, world, action="revoke", code=rows[0]["code"])
    assert r.json() == {"action": "revoke", "units": 1}
    assert (await fulfil(client, world, rows[0]["code"]))["reason"] == "revoked"
    assert (await fulfil(client, world, rows[1]["code"]))["result"] == "pass"
    again = await act(client, world, action="revoke", code=rows[0]["code"])
    assert again.json()["units"] == 0  # already terminal: nothing moves


async def test_recall_a_lot_and_revoke_a_batch(client: httpx.AsyncClient, world: World) -> None:
    lot_rows = await issue_codes(client, world, 3, lot="BAD-LOT")
    other = await issue_codes(client, world, 2, lot="GOOD")
    r = await act(client, world, action="recall", product_id=world.product_a["id"], lot="BAD-LOT")
    assert r.json()["units"] == 3
    assert {(await fulfil(client, world, x["code"]))["reason"] for x in lot_rows} == {"recalled"}
    verdict = (await client.get("/v1/verify", params={"code": other[0]["code"]})).json()
    assert "recalled" not in verdict["warnings"]

    batch = await client.get(
        "/v1/code-batches",
        params={"product_id": world.product_a["id"]},
        headers=bearer(world.brand_a),
    )
    assert batch.status_code in (404, 405)  # there is no batch listing; use the id we know
    history = (
        await client.get(f"/v1/codes/{other[1]['code']}/history", headers=bearer(world.brand_a))
    ).json()
    assert history["state"] == "active"


async def test_stolen_and_destroyed_are_refused_at_fulfilment(
    client: httpx.AsyncClient, world: World
) -> None:
    rows = await issue_codes(client, world, 2)
    await act(client, world, action="report_stolen", code=rows[0]["code"])
    await act(client, world, action="destroy", code=rows[1]["code"])
    assert (await fulfil(client, world, rows[0]["code"]))["reason"] == "revoked"
    answer = (await client.get("/v1/verify", params={"code": rows[1]["code"]})).json()
    assert answer["verdict"] == "revoked"


async def test_one_target_exactly(client: httpx.AsyncClient, world: World) -> None:
    rows = await issue_codes(client, world, 1)
    r = await act(
        client, world, action="revoke", code=rows[0]["code"], product_id=world.product_a["id"]
    )
    assert r.status_code == 422
    r = await act(client, world, action="revoke")
    assert r.status_code == 422


async def test_another_brand_cannot_touch_or_see_a_unit(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    r = await client.post(
        "/v1/units/actions",
        json={"action": "revoke", "reason": "x", "code": row["code"]},
        headers=bearer(world.brand_b),
    )
    assert r.status_code == 404
    r = await client.get(f"/v1/codes/{row['code']}/history", headers=bearer(world.brand_b))
    assert r.status_code == 404
    r = await client.get(f"/v1/brands/{world.brand_a_id}/dashboard", headers=bearer(world.brand_b))
    assert r.status_code == 404


async def test_another_brands_targets_look_like_missing_ones(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """A unit, batch or product of brand A, named by brand B, gets the very 404 a missing
    one gets, and nothing of brand A's moves."""
    rows = await issue_codes(client, world, 2, lot="L1")
    conn = await connect(dsn)
    try:
        batch_id = str(await conn.fetchval("select batch_id from units where code = $1",
                                           rows[0]["code"]))  # fmt: skip
    finally:
        await conn.close()
    missing_code = f"(01){world.product_a['gtin']}(21)NOSUCHSERIAL"
    unknown = "00000000-0000-4000-8000-000000000000"
    cases = [
        ({"code": rows[0]["code"]}, {"code": missing_code}, None),
        ({"batch_id": batch_id}, {"batch_id": unknown}, (batch_id, unknown)),
        (
            {"product_id": world.product_a["id"], "lot": "L1"},
            {"product_id": unknown, "lot": "L1"},
            (world.product_a["id"], unknown),
        ),
    ]

    def problem(r: httpx.Response, ids: tuple[str, str] | None, which: int) -> dict[str, Any]:
        assert r.status_code == 404, r.text
        body: dict[str, Any] = r.json()
        body.pop("request_id")
        if ids is not None:
            body["detail"] = body["detail"].replace(ids[which], "ID")
        return body

    for theirs, missing, ids in cases:
        answers = [
            await client.post(
                "/v1/units/actions",
                json={"action": "destroy", "reason": "x", **target},
                headers=bearer(world.brand_b),
            )
            for target in (theirs, missing)
        ]
        assert problem(answers[0], ids, 0) == problem(answers[1], ids, 1), theirs
    for row in rows:
        assert (await fulfil(client, world, row["code"]))["result"] == "pass"
    history = [
        await client.get(f"/v1/codes/{code}/history", headers=bearer(world.brand_b))
        for code in (rows[0]["code"], missing_code)
    ]
    assert problem(history[0], None, 0) == problem(history[1], None, 1)


async def test_history_lists_every_scan(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    await fulfil(client, world, row["code"])
    await fulfil(client, world, row["code"] + "")
    await client.get("/v1/verify", params={"code": row["code"], "region": "FR"})
    r = await client.get(f"/v1/codes/{row['code']}/history", headers=bearer(world.brand_a))
    body = r.json()
    assert body["state"] == "shipped"
    assert [(e["kind"], e["result"]) for e in body["events"]] == [
        ("fulfilment", "pass"),
        ("fulfilment", "pass"),  # the same shipment retried
        ("customer", "scanned"),
    ]


async def test_gs1_codes_have_a_history_too(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1, "gs1")
    await fulfil(client, world, row["code"])
    r = await client.get(f"/v1/codes/{row['code']}/history", headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    assert r.json()["events"][0]["result"] == "pass"


async def today(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """Brand A's one dashboard row for today (product A is its only product)."""
    r = await client.get(f"/v1/brands/{world.brand_a_id}/dashboard", headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    days: list[dict[str, Any]] = r.json()["days"]
    (day,) = [d for d in days if d["day"] == date.today().isoformat()]
    assert day["product_id"] == world.product_a["id"]
    assert day["product_name"] == world.product_a["name"]  # named, not only an id
    return day


async def test_dashboard_per_product_and_day(client: httpx.AsyncClient, world: World) -> None:
    await sell_checked_only(client, world)  # so that an unshipped unit's check is suspicious
    rows = await issue_codes(client, world, 4)
    assert (await fulfil(client, world, rows[0]["code"]))["result"] == "pass"
    retried = await fulfil(client, world, rows[0]["code"])  # the same shipment retried
    assert retried["result"] == "pass"
    assert (await fulfil(client, world, rows[2]["code"]))["result"] == "pass"
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": rows[0]["code"], "gtin": world.product_a["gtin"], "shipment_id": "OTHER"},
        headers=bearer(world.station),
    )
    assert r.json()["reason"] == "already_shipped"
    await client.get("/v1/verify", params={"code": rows[1]["code"]})  # unshipped: suspicious
    day = await today(client, world)
    assert day["issued"] == 4
    assert day["passed"] == 2  # two units, three pass events: the retry is not a second unit
    assert day["blocked"] == {"already_shipped": 1}
    assert day["customer_scans"] == 1
    assert day["suspicious"] == 1
    admin = await client.get(
        f"/v1/brands/{world.brand_a_id}/dashboard", headers=bearer(world.admin)
    )
    assert [d for d in admin.json()["days"] if d["day"] == day["day"]] == [day]


async def test_a_unit_passed_reversed_and_passed_again_counts_once(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    assert (await fulfil(client, world, row["code"]))["result"] == "pass"
    r = await client.post(
        "/v1/fulfilment/reversals",
        json={"scan": row["code"], "shipment_id": "S"},
        headers=bearer(world.station),
    )
    assert r.json()["state"] == "active", r.text
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S2"},
        headers=bearer(world.station),
    )
    assert r.json()["result"] == "pass"
    assert (await today(client, world))["passed"] == 1


async def import_serials(
    client: httpx.AsyncClient, world: World, content: str, mode: str
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/serial-imports",
        params={"mode": mode},
        content=content.encode(),
        headers={**bearer(world.brand_a), "content-type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    for _ in range(400):
        batch: dict[str, Any] = (
            await client.get(r.headers["location"], headers=bearer(world.brand_a))
        ).json()
        if batch["status"] not in ("pending", "running"):
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError("import did not finish")


async def test_issued_counts_the_units_created_not_the_rows_sent(
    client: httpx.AsyncClient, world: World
) -> None:
    await issue_codes(client, world, 3)
    # Three rows, one refused: two units.
    some = await import_serials(client, world, "A1\nA2\nA1\n", "accept_valid")
    assert (some["status"], some["report"]["accepted"]) == ("done", 2)
    # Two rows, one refused, all or nothing: no unit.
    none = await import_serials(client, world, "B1\nB1\n", "all_or_nothing")
    assert (none["status"], none["report"]["accepted"]) == ("done", 0)
    assert (await today(client, world))["issued"] == 3 + 2


async def test_every_brand_action_is_audited_with_its_reason_and_key(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    rows = await issue_codes(client, world, 3)
    lot_rows = await issue_codes(client, world, 2, lot="BAD-LOT")
    conn = await connect(dsn)
    try:
        batch_id = await conn.fetchval(
            "select batch_id from units where code = $1", rows[2]["code"]
        )
        actions = [
            ({"action": "revoke", "code": rows[0]["code"]}, rows[0]["code"], 1),
            ({"action": "report_stolen", "code": rows[1]["code"]}, rows[1]["code"], 1),
            ({"action": "destroy", "batch_id": str(batch_id)}, str(batch_id), 1),
            (
                {"action": "recall", "product_id": world.product_a["id"], "lot": "BAD-LOT"},
                f"{world.product_a['id']}/BAD-LOT",
                len(lot_rows),
            ),
        ]
        for n, (body, _, units) in enumerate(actions):
            r = await client.post(
                "/v1/units/actions",
                json={"reason": f"reason {n}", **body},
                headers=bearer(world.brand_a),
            )
            assert r.json()["units"] == units, r.text
        audited = await conn.fetch(
            "select api_key_id, brand_id::text, action, target, detail from audit_log"
            " where action like 'units.%' order by id"
        )
    finally:
        await conn.close()
    token = parse_api_key(world.brand_a)
    assert token is not None
    assert [dict(a) for a in audited] == [
        {
            "api_key_id": token.key_id,
            "brand_id": world.brand_a_id,
            "action": f"units.{body['action']}",
            "target": target,
            "detail": {"reason": f"reason {n}", "units": units},
        }
        for n, (body, target, units) in enumerate(actions)
    ]


@pytest.mark.parametrize(
    ("query", "span"),
    [
        ({"to": "0001-01-05"}, ("0001-01-01", "0001-01-05")),  # 30 days back: before day one
        ({"from": "0001-01-01", "to": "0001-01-02"}, ("0001-01-01", "0001-01-02")),
        ({"from": "9999-12-30", "to": "9999-12-31"}, ("9999-12-30", "9999-12-31")),
    ],
)
async def test_dashboard_dates_at_the_ends_of_the_calendar(
    client: httpx.AsyncClient, world: World, query: dict[str, str], span: tuple[str, str]
) -> None:
    r = await client.get(
        f"/v1/brands/{world.brand_a_id}/dashboard", params=query, headers=bearer(world.brand_a)
    )
    assert r.status_code == 200, r.text
    assert (r.json()["from"], r.json()["to"], r.json()["days"]) == (*span, [])
    assert r.json()["forged"] == []
