"""Fulfilment: every reason, exactly-once claims, idempotent retries, batches, reversals."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, fields
from typing import Any

import asyncpg
import httpx

from tests.support.asgi import make_client
from tests.support.world import (
    World,
    bearer,
    claim,
    issue_codes,
    make_product,
    make_station,
    new_gtin,
)
from transparency.api.app import create_app
from transparency.domain import codes
from transparency.runtime.settings import Settings


async def claim_tote(
    client: httpx.AsyncClient, world: World, shipment: str, scans: list[str]
) -> list[dict[str, Any]]:
    """A batch claim of ``scans`` for product A; its results, in order."""
    items = [{"scan": scan, "gtin": world.product_a["gtin"]} for scan in scans]
    r = await client.post(
        "/v1/fulfilment/verifications/batch",
        json={"shipment_id": shipment, "items": items},
        headers=bearer(world.station),
    )
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


async def events(dsn: str, code: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "select kind, result, reason from scan_events where code = $1 order by scanned_at",
            code,
        )
    finally:
        await conn.close()


async def state(dsn: str, code: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        value: str = await conn.fetchval("select state::text from units where code = $1", code)
        return value
    finally:
        await conn.close()


async def test_pass_then_already_shipped(client: httpx.AsyncClient, world: World, dsn: str) -> None:
    (row,) = await issue_codes(client, world, 1, lot="L1")
    first = await claim(client, world, row["symbol"])  # the label's URL, as scanned
    assert (first["result"], first["reason"]) == ("pass", None)
    assert first["unit"]["lot"] == "L1"
    assert await state(dsn, row["code"]) == "shipped"
    again = await claim(client, world, row["code"], shipment="S-2")
    assert (again["result"], again["reason"]) == ("fail", "already_shipped")
    assert again["first_shipped"]["site_id"] == world.site_id
    assert again["first_shipped"]["at"] is not None
    assert [(e["result"], e["reason"]) for e in await events(dsn, row["code"])] == [
        ("pass", None),
        ("fail", "already_shipped"),
    ]


async def test_the_same_shipment_retried_gets_its_pass_back(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    assert (await claim(client, world, row["code"]))["result"] == "pass"
    retry = await claim(client, world, row["code"])  # same shipment, same site: a retry
    assert retry["result"] == "pass"


async def test_an_idempotency_key_returns_the_first_answer(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    rows = await issue_codes(client, world, 1)
    key = str(uuid.uuid4())
    first = await claim(client, world, rows[0]["code"], idem=key)
    second = await claim(client, world, rows[0]["code"], idem=key)
    assert first == second
    assert first["result"] == "pass"
    assert len(await events(dsn, rows[0]["code"])) == 1  # the retry touched nothing


async def test_a_retry_gets_the_first_reply_whatever_it_said(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """The key keeps a claim's outcome, and a retry's reply is built from it: the same
    reply, field for field, for a pass, a refusal naming the first shipment, a wrong
    product and a refusal made without a query; and the retry records nothing."""
    shipped, other = await issue_codes(client, world, 2, lot="L7")
    assert (await claim(client, world, shipped["code"], shipment="S-0"))["result"] == "pass"
    requests: dict[str, dict[str, str]] = {
        "pass": {"scan": other["code"], "shipment": "S-9"},
        "already_shipped": {"scan": shipped["code"], "shipment": "S-1"},
        "wrong_product": {"scan": shipped["code"], "gtin": world.product_b["gtin"]},
        "malformed": {"scan": "hello world"},
    }
    for expected, request in requests.items():
        key = str(uuid.uuid4())
        first = await claim(client, world, idem=key, **request)
        assert (first["reason"] or "pass") == expected, first
        assert await claim(client, world, idem=key, **request) == first, expected
    assert [e["reason"] for e in await events(dsn, shipped["code"])] == [
        None, "already_shipped", "wrong_product",
    ]  # fmt: skip
    assert first["unit"] is None  # malformed
    assert (await claim(client, world, other["code"], shipment="S-9"))["unit"]["lot"] == "L7"


async def test_a_kept_claim_is_never_taken_over_as_a_stale_reservation(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """A reservation with no answer, left long enough, is taken over by its request's
    retry (its holder died). A key that holds a claim's outcome is answered, however old:
    its retry claims nothing again."""
    (row,) = await issue_codes(client, world, 1)
    key = str(uuid.uuid4())
    first = await claim(client, world, row["code"], idem=key)
    conn = await asyncpg.connect(dsn)
    try:
        aged = await conn.execute(
            "update fulfilment_replies set reserved_at = now() - interval '1 day'"
            " where idempotency_key = $1",
            key,
        )
        assert aged == "UPDATE 1"
    finally:
        await conn.close()
    assert await claim(client, world, row["code"], idem=key) == first
    assert len(await events(dsn, row["code"])) == 1


async def test_requests_sent_at_once_under_one_key_claim_once(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """Ten requests at once under one key, for ten different units: one claims, every other
    is refused (422: another request; 409 while it is answered) and leaves its unit as it
    was. The key was once looked up before the claim and stored after it, so all ten
    claimed, and nine stations were told 422 about units now shipped."""
    rows = await issue_codes(client, world, 10)
    key = str(uuid.uuid4())
    answers = await asyncio.gather(
        *[
            client.post(
                "/v1/fulfilment/verifications",
                json={"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S-1"},
                headers={**bearer(world.station), "Idempotency-Key": key},
            )
            for row in rows
        ]
    )
    passed = [r for r in answers if r.status_code == 200]
    assert len(passed) == 1, [r.text for r in answers]
    assert passed[0].json()["result"] == "pass"
    refused = {r.json()["type"] for r in answers if r.status_code != 200}
    assert refused <= {"/problems/idempotency-key-reused", "/problems/idempotency-key-in-use"}
    states = [await state(dsn, row["code"]) for row in rows]
    assert sorted(states) == ["active"] * 9 + ["shipped"], states


async def test_a_claim_that_fails_leaves_its_key_free_for_the_retry(
    client: httpx.AsyncClient, world: World, dsn: str, settings: Settings
) -> None:
    """A reservation whose request got no answer (here: the unit's row is locked past the
    statement timeout) is dropped, so the retry is answered, not told the key is in use."""
    (row,) = await issue_codes(client, world, 1)
    key = str(uuid.uuid4())
    impatient = create_app(settings.model_copy(update={"statement_timeout_seconds": 0.5}))
    blocker = await asyncpg.connect(dsn)
    try:
        async with impatient.router.lifespan_context(impatient) as state:
            impatient.state.lifespan_state = state
            async with make_client(impatient) as http, blocker.transaction():
                await blocker.execute("select 1 from units where code = $1 for update", row["code"])
                r = await http.post(
                    "/v1/fulfilment/verifications",
                    json={
                        "scan": row["code"],
                        "gtin": world.product_a["gtin"],
                        "shipment_id": "S-1",
                    },
                    headers={**bearer(world.station), "Idempotency-Key": key},
                )
                assert r.status_code == 503, r.text
                assert r.json()["type"] == "/problems/statement-timeout"
    finally:
        await blocker.close()
    assert (await claim(client, world, row["code"], idem=key))["result"] == "pass"


async def test_an_idempotency_key_sent_with_another_request_is_refused(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """A key names one request (scan, GTIN, shipment): sent with any other, it gets a 422
    problem of its own and changes nothing, instead of the first request's pass."""
    first_row, other_row = await issue_codes(client, world, 2)
    first, other = first_row["code"], other_row["code"]
    key = str(uuid.uuid4())
    assert (await claim(client, world, first, idem=key, shipment="S-1"))["result"] == "pass"
    gtin = world.product_a["gtin"]
    others = [
        {"scan": "garbage", "gtin": gtin, "shipment_id": "S-1"},
        {"scan": other, "gtin": gtin, "shipment_id": "S-1"},
        {"scan": first, "gtin": gtin, "shipment_id": "S-2"},
        {"scan": first, "gtin": world.product_b["gtin"], "shipment_id": "S-1"},
        {"scan": first_row["symbol"], "gtin": gtin, "shipment_id": "S-1"},  # another spelling
    ]
    for body in others:
        r = await client.post(
            "/v1/fulfilment/verifications",
            json=body,
            headers={**bearer(world.station), "Idempotency-Key": key},
        )
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/idempotency-key-reused", body
    assert await state(dsn, other) == "active"
    assert await events(dsn, other) == []
    assert len(await events(dsn, first)) == 1
    # The same request still gets its first answer, and the key stays bound to it.
    assert (await claim(client, world, first, idem=key, shipment="S-1"))["result"] == "pass"
    # Keys are per station key: another station's same key is another request altogether.
    other_key = await station_elsewhere(client, world)
    reply = await claim(client, world, other, idem=key, key=other_key)
    assert reply["result"] == "pass"


async def test_every_failure_reason(
    client: httpx.AsyncClient, world: World, dsn: str, app: Any
) -> None:
    rows = await issue_codes(client, world, 4)
    real = rows[0]["code"]
    payload = codes.parse(real).payload
    assert payload is not None
    forged = codes.sign_transparency(payload, b"not the brand's secret key......")
    unknown_key = codes.sign_transparency(codes.Payload(8000, 1), b"x" * 32)
    keyring = app.state.lifespan_state["keyring"]
    key = keyring.get(payload.key_id)
    unknown = codes.sign_transparency(codes.Payload(payload.key_id, 12345), key.hmac_secret)
    cases = {
        "malformed": "hello world",
        "forged": forged,
        "unknown": unknown,
    }
    for reason, scan in cases.items():
        reply = await claim(client, world, scan)
        assert (reply["result"], reply["reason"]) == ("fail", reason), reason
    assert (await claim(client, world, unknown_key))["reason"] == "forged"
    wrong = await claim(client, world, rows[1]["code"], gtin=world.product_b["gtin"])
    assert wrong["reason"] == "wrong_product"
    assert await state(dsn, rows[1]["code"]) == "active"  # a fail changes no unit
    missing = await claim(client, world, "   ")
    assert missing["reason"] == "missing_code"

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("update units set state = 'revoked' where code = $1", rows[2]["code"])
        await conn.execute("update units set state = 'recalled' where code = $1", rows[3]["code"])
    finally:
        await conn.close()
    assert (await claim(client, world, rows[2]["code"]))["reason"] == "revoked"
    assert (await claim(client, world, rows[3]["code"]))["reason"] == "recalled"

    r = await client.post(
        f"/v1/signing-keys/{payload.key_id}/revoke",
        json={"reason": "leak"},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200
    assert (await claim(client, world, rows[1]["code"]))["reason"] == "key_revoked"


async def test_refusals_without_a_query_are_recorded_for_the_brand_they_concern(
    client: httpx.AsyncClient, world: World, dsn: str, app: Any
) -> None:
    """A forgery naming no key of ours belongs to no brand; one naming the brand's key id,
    a revoked key's code, and a product that must be checked but was shipped without a
    code, are the brand's, and its dashboard counts them."""
    rows = await issue_codes(client, world, 1)
    payload = codes.parse(rows[0]["code"]).payload
    assert payload is not None
    forged = codes.sign_transparency(payload, b"not the brand's secret key......")
    stranger = codes.sign_transparency(codes.Payload(codes.MAX_KEY_ID - 7, 1), b"x" * 32)
    await client.post(
        f"/v1/signing-keys/{payload.key_id}/revoke",
        json={"reason": "leak"},
        headers=bearer(world.brand_a),
    )
    shipment = f"REC-{uuid.uuid4().hex[:6]}"
    for scan in (forged, stranger, rows[0]["code"], " "):
        await claim(client, world, scan, shipment=shipment)
    await app.state.lifespan_state["events"].flush()
    conn = await asyncpg.connect(dsn)
    try:
        recorded = await conn.fetch(
            "select code, reason, brand_id::text, product_id::text from scan_events"
            " where shipment_id = $1 order by reason, brand_id nulls last",
            shipment,
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in recorded] == [
        (forged, "forged", world.brand_a_id, None),
        (stranger, "forged", None, None),
        (rows[0]["code"], "key_revoked", world.brand_a_id, None),
        ("-", "missing_code", world.brand_a_id, world.product_a["id"]),
    ]


async def test_a_tote_with_empty_scans(client: httpx.AsyncClient, world: World) -> None:
    """Each empty scan is decided by its product: one that must be checked fails."""
    loose = await make_product(client, world.brand_a, requires_check=False)
    (row,) = await issue_codes(client, world, 1)
    items = [
        {"scan": "", "gtin": world.product_a["gtin"]},
        {"scan": row["code"], "gtin": world.product_a["gtin"]},
        {"scan": " ", "gtin": loose["gtin"]},
        {"scan": "", "gtin": new_gtin()},  # no such product: it cannot be waived
        {"scan": "", "gtin": world.product_a["gtin"]},
    ]
    r = await client.post(
        "/v1/fulfilment/verifications/batch",
        json={"shipment_id": "TOTE-E", "items": items},
        headers=bearer(world.station),
    )
    assert r.status_code == 200, r.text
    results = [(x["result"], x["reason"]) for x in r.json()["results"]]
    missing = ("fail", "missing_code")
    assert results == [missing, ("pass", None), ("pass", None), missing, missing]


async def test_a_unit_twice_in_one_tote_names_when_it_was_shipped(
    client: httpx.AsyncClient, world: World
) -> None:
    for count in (1, 2):  # alone (the one-code statement), and among others
        rows = await issue_codes(client, world, count)
        scans = [r["code"] for r in rows] + [rows[0]["code"]]
        r = await client.post(
            "/v1/fulfilment/verifications/batch",
            json={
                "shipment_id": f"TOTE-D{count}",
                "items": [{"scan": s, "gtin": world.product_a["gtin"]} for s in scans],
            },
            headers=bearer(world.station),
        )
        copy = r.json()["results"][-1]
        assert (copy["result"], copy["reason"]) == ("fail", "already_shipped")
        assert copy["first_shipped"]["site_id"] == world.site_id
        assert copy["first_shipped"]["at"] is not None


async def test_a_hundred_concurrent_claims_one_pass(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    (row,) = await issue_codes(client, world, 1)
    replies = await asyncio.gather(
        *(claim(client, world, row["code"], shipment=f"S-{i}") for i in range(100))
    )
    results = sorted((r["result"], r["reason"]) for r in replies)
    assert results.count(("pass", None)) == 1
    assert results.count(("fail", "already_shipped")) == 99
    assert len(await events(dsn, row["code"])) == 100


async def test_batch_one_result_each_in_order(client: httpx.AsyncClient, world: World) -> None:
    rows = await issue_codes(client, world, 5)
    scans = [r["code"] for r in rows] + ["junk", rows[0]["code"]]
    r = await client.post(
        "/v1/fulfilment/verifications/batch",
        json={
            "shipment_id": "TOTE-1",
            "items": [{"scan": s, "gtin": world.product_a["gtin"]} for s in scans],
        },
        headers=bearer(world.station),
    )
    assert r.status_code == 200, r.text
    results = [(x["result"], x["reason"]) for x in r.json()["results"]]
    assert results == [("pass", None)] * 5 + [("fail", "malformed"), ("fail", "already_shipped")]


async def test_batch_is_limited_to_1000(client: httpx.AsyncClient, world: World) -> None:
    items = [{"scan": "x", "gtin": world.product_a["gtin"]}] * 1001
    r = await client.post(
        "/v1/fulfilment/verifications/batch",
        json={"shipment_id": "T", "items": items},
        headers=bearer(world.station),
    )
    assert r.status_code == 422


async def test_reversal_same_site_within_window(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    rows = await issue_codes(client, world, 2)
    await claim(client, world, rows[0]["code"], shipment="ORD-1")
    r = await client.post(
        "/v1/fulfilment/reversals",
        json={"scan": rows[0]["code"], "shipment_id": "ORD-1"},
        headers=bearer(world.station),
    )
    assert r.json() == {"code": rows[0]["code"], "state": "active"}
    assert (await claim(client, world, rows[0]["code"], shipment="ORD-2"))["result"] == "pass"

    other_site = await client.post(
        "/v1/sites", json={"name": f"other-{uuid.uuid4().hex[:6]}"}, headers=bearer(world.admin)
    )
    other_key = (
        await client.post(
            "/v1/api-keys",
            json={"role": "station", "site_id": other_site.json()["id"]},
            headers=bearer(world.admin),
        )
    ).json()["key"]
    r = await client.post(
        "/v1/fulfilment/reversals",
        json={"scan": rows[0]["code"], "shipment_id": "ORD-2"},
        headers=bearer(other_key),
    )
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/reversal-refused"

    await claim(client, world, rows[1]["code"], shipment="ORD-3")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "update units set shipped_at = now() - interval '11 days' where code = $1",
            rows[1]["code"],
        )
    finally:
        await conn.close()
    r = await client.post(
        "/v1/fulfilment/reversals",
        json={"scan": rows[1]["code"], "shipment_id": "ORD-3"},
        headers=bearer(world.station),
    )
    assert r.status_code == 409
    assert "window" in r.json()["detail"]


async def test_returns_and_restock(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    await claim(client, world, row["code"])
    r = await client.post(
        "/v1/fulfilment/returns",
        json={"scan": row["code"], "action": "return", "shipment_id": "S-1"},
        headers=bearer(world.station),
    )
    assert r.json()["state"] == "returned"
    assert (await claim(client, world, row["code"], shipment="S-9"))["reason"] == "not_active"
    r = await client.post(
        "/v1/fulfilment/returns",
        json={"scan": row["code"], "action": "restock", "shipment_id": "S-1"},
        headers=bearer(world.station),
    )
    assert r.json()["state"] == "active"
    assert (await claim(client, world, row["code"], shipment="S-9"))["result"] == "pass"
    r = await client.post(
        "/v1/fulfilment/returns",
        json={"scan": row["code"], "action": "restock", "shipment_id": "S-9"},
        headers=bearer(world.station),
    )
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/invalid-transition"


async def station_elsewhere(client: httpx.AsyncClient, world: World) -> str:
    """The key of a station at a new site."""
    _, key = await make_station(client, world.admin)
    return key


async def take_back(
    client: httpx.AsyncClient, key: str, code: str, action: str, shipment: str
) -> httpx.Response:
    path = "/v1/fulfilment/reversals" if action == "reverse" else "/v1/fulfilment/returns"
    body = {"scan": code, "shipment_id": shipment}
    return await client.post(
        path, json=body if action == "reverse" else {**body, "action": action},
        headers=bearer(key),
    )  # fmt: skip


async def test_no_unit_passes_twice_except_through_a_real_return(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """The attack: a unit site 2 shipped a second ago, returned and restocked by a station at
    site 1, then shipped again (two passes). Returns and restocks obey the reversal rules:
    the site that shipped the unit, naming the shipment it left in, within the window."""
    (row,) = await issue_codes(client, world, 1)
    code = row["code"]
    elsewhere = await station_elsewhere(client, world)
    assert (await claim(client, world, code, shipment="ORD-2"))["result"] == "pass"

    refused = [
        ("return", elsewhere, "ORD-2"),  # another site, even naming the right shipment
        ("restock", elsewhere, "ORD-2"),
        ("reverse", elsewhere, "ORD-2"),
        ("return", world.station, "ORD-X"),  # the right site, another shipment
        ("reverse", world.station, "ORD-X"),
    ]
    for action, key, shipment in refused:
        r = await take_back(client, key, code, action, shipment)
        assert r.status_code == 409, (action, shipment, r.text)
        assert r.json()["type"] in ("/problems/reversal-refused", "/problems/invalid-transition")
    assert await state(dsn, code) == "shipped"
    again = await claim(client, world, code, shipment="ORD-3", key=elsewhere)
    assert (again["result"], again["reason"]) == ("fail", "already_shipped")

    # A real return: where it left, for the order it left in. Restocked, it may pass again.
    r = await take_back(client, world.station, code, "return", "ORD-2")
    assert r.json() == {"code": code, "state": "returned"}
    r = await take_back(client, elsewhere, code, "restock", "ORD-2")
    assert (r.status_code, r.json()["type"]) == (409, "/problems/reversal-refused")
    r = await take_back(client, world.station, code, "restock", "ORD-2")
    assert r.json() == {"code": code, "state": "active"}
    assert (await claim(client, world, code, shipment="ORD-4"))["result"] == "pass"
    kinds = [(e["kind"], e["result"]) for e in await events(dsn, code)]
    assert kinds.count(("fulfilment", "pass")) == 2
    assert kinds.count(("return", "pass")) == kinds.count(("restock", "pass")) == 1


async def test_returns_and_restocks_close_with_the_window(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """Measured from the pass, as reversals: a unit out longer than the window stays out."""
    rows = await issue_codes(client, world, 2)
    for row in rows:
        await claim(client, world, row["code"], shipment="ORD-W")
    returned, late = rows[0]["code"], rows[1]["code"]
    assert (await take_back(client, world.station, returned, "return", "ORD-W")).status_code == 200
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "update units set shipped_at = now() - interval '11 days' where code = any($1)",
            [returned, late],
        )
    finally:
        await conn.close()
    for code, action in ((late, "return"), (returned, "restock")):
        r = await take_back(client, world.station, code, action, "ORD-W")
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "/problems/reversal-refused"
        assert "window" in r.json()["detail"]
    assert (await state(dsn, late), await state(dsn, returned)) == ("shipped", "returned")


async def test_only_station_keys_claim(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    for key in (world.brand_a, world.admin):
        r = await client.post(
            "/v1/fulfilment/verifications",
            json={"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S"},
            headers=bearer(key),
        )
        assert r.status_code == 403


async def test_replies_match_the_published_schema(client: httpx.AsyncClient, world: World) -> None:
    from transparency.api.schemas import FulfilmentReply

    rows = await issue_codes(client, world, 1)
    for scan, shipment in ((rows[0]["code"], "A"), (rows[0]["code"], "B"), ("junk", "A")):
        FulfilmentReply.model_validate(await claim(client, world, scan, shipment=shipment))


class _RolledBack(Exception):
    """Ends a transaction whose claim was only looked at."""


async def test_the_single_and_the_batch_claims_decide_alike(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """Three statements make the same decision (one code; a tote; single claims claimed
    together): for every unit state, a wrong product, the same shipment retried and an
    unknown code, they must agree."""
    from transparency.db import scans
    from transparency.db.pool import is_citus
    from transparency.domain.lifecycle import UnitState

    (row,) = await issue_codes(client, world, 1)
    code, site = row["code"], uuid.UUID(world.site_id)
    gtin_a, gtin_b = world.product_a["gtin"], world.product_b["gtin"]
    conn = await asyncpg.connect(dsn)

    async def both(code: str, gtin: str, shipment: str) -> list[tuple[Any, ...]]:
        answers = []
        # Citus claims single units alone (runtime.claims): no statement of them together.
        together = () if await is_citus(conn) else ("each",)
        for statement in ("one", "tote", *together):
            try:
                async with conn.transaction():
                    if statement == "one":
                        got = await scans.claim_one(
                            conn, code, gtin, site_id=site, api_key_id="k", shipment_id=shipment
                        )
                    elif statement == "tote":
                        (got,) = await scans.claim(
                            conn, [(code, gtin)], site_id=site, api_key_id="k",
                            shipment_id=shipment,
                        )  # fmt: skip
                    else:  # single claims claimed together (runtime.claims)
                        (each,) = await scans.claim_each(
                            conn, [scans.Wanted(code, gtin, site, "k", shipment)]
                        )
                        assert each is not None  # nothing else holds the unit
                        got = each
                    after = await conn.fetchval(
                        "select state::text from units where code = $1", code
                    )
                    event = await conn.fetchrow(
                        "select result, reason, brand_id, product_id from scan_events"
                        " where code = $1 and api_key_id = 'k'", code,
                    )  # fmt: skip
                    reply = {k: v for k, v in asdict(got).items() if k != "shipped_at"}
                    moved = got.shipped_at is not None
                    assert event is not None
                    answers.append((sorted(reply.items()), moved, after, tuple(event)))
                    raise _RolledBack
            except _RolledBack:
                pass
        return answers

    try:
        seen = set()
        for unit_state in UnitState:
            await conn.execute(
                "update units set state = $2::unit_state, shipment_id = 'S-9',"
                " shipped_site_id = $3 where code = $1",
                code, unit_state.value, site,
            )  # fmt: skip
            for gtin, shipment in ((gtin_a, "S-1"), (gtin_b, "S-1"), (gtin_a, "S-9")):
                single, *others = await both(code, gtin, shipment)
                assert others == [single] * len(others), (unit_state, gtin, shipment)
                seen.add(dict(single[0])["reason"])
        for status in ("pending", "running", "failed"):  # a batch not done: unknown
            await conn.execute("update units set state = 'active' where code = $1", code)
            batch = await conn.fetchval("select batch_id from units where code = $1", code)
            old = await conn.fetchval(
                "update code_batches b set status = $2 from code_batches o"
                " where b.id = $1 and o.id = b.id returning o.status", batch, status,
            )  # fmt: skip
            single, *others = await both(code, gtin_a, "S-1")
            await conn.execute("update code_batches set status = $2 where id = $1", batch, old)
            assert others == [single] * len(others), status
            assert dict(single[0])["reason"] == "unknown"
            assert dict(single[0])["gtin"] is None  # nothing about an unreleased batch
        unknown = codes.sign_transparency(codes.Payload(1, 999), b"k" * 32)
        single, *others = await both(unknown, gtin_a, "S-1")
        assert others == [single] * len(others)
        seen.add(dict(single[0])["reason"])
        assert seen >= {None, "unknown", "wrong_product", "already_shipped", "revoked",
                        "recalled", "not_active"}  # fmt: skip
    finally:
        await conn.close()


async def test_lean_routes_refuse_bad_bodies_like_any_route(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """The station endpoints parse their own bodies (lean.py): the same problems as the
    rest of the API for bad JSON, bad fields, a NUL escape, a long Idempotency-Key and a
    body that is not JSON."""
    import json

    (row,) = await issue_codes(client, world, 1)
    good = json.dumps({"scan": row["code"], "gtin": world.product_a["gtin"],
                       "shipment_id": "S-1"}).encode()  # fmt: skip
    single, batch = "/v1/fulfilment/verifications", "/v1/fulfilment/verifications/batch"
    invalid = (422, "/problems/invalid-input")
    cases = [
        (single, b"{not json", {}, (400, "/problems/malformed-json")),
        (single, b'{"scan": "x", "gtin": "1"}', {}, invalid),
        (single, b'{"scan": "a\\u0000b", "gtin": "1", "shipment_id": "s"}', {}, invalid),
        (batch, b'{"shipment_id": "s", "items": [{"scan": "\\u0000", "gtin": "1"}]}', {},
         invalid),
        (single, good, {"Idempotency-Key": "k" * 201}, invalid),
        (single, good, {"content-type": "text/plain"}, invalid),
        ("/v1/verify", b'{"scan": "x"}', {"content-type": "text/plain;charset=UTF-8"}, invalid),
        ("/v1/fulfilment/reversals", good, {"content-type": "text/plain"}, invalid),
    ]  # fmt: skip
    for path, body, extra, (status, kind) in cases:
        headers = {**bearer(world.station), "content-type": "application/json", **extra}
        r = await client.post(path, content=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == kind, body
    no_key = await client.post(single, content=good)
    assert no_key.status_code == 401
    tote = json.dumps({"shipment_id": "S-1", "items": [json.loads(good)]}).encode()
    for path, body in ((single, good), (batch, tote)):
        brand = await client.post(path, content=body, headers=bearer(world.brand_a))
        assert brand.status_code == 403, path
        assert brand.headers["content-type"] == "application/problem+json"
    assert await state(dsn, row["code"]) == "active"  # nothing was claimed
    assert await events(dsn, row["code"]) == []


async def test_concurrent_batches_pass_each_unit_once(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """Totes that share units, claimed at the same time: every unit passes exactly once."""
    rows = await issue_codes(client, world, 30)
    codes_ = [r["code"] for r in rows]
    totes = [codes_[i : i + 15] for i in range(0, 30, 5)] * 2  # each unit in up to 6 totes

    answers = await asyncio.gather(
        *(claim_tote(client, world, f"TOTE-{n}", tote) for n, tote in enumerate(totes))
    )
    passes = {code: 0 for code in codes_}
    for tote, results in zip(totes, answers, strict=True):
        for code, result in zip(tote, results, strict=True):
            passes[code] += result["result"] == "pass"
            if result["result"] == "fail":
                assert result["reason"] == "already_shipped"
    assert set(passes.values()) == {1}
    for code in codes_:
        assert await state(dsn, code) == "shipped"


async def test_forged_and_malformed_scans_cost_no_query(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """With the units table locked by another session, refusals still answer at once
    (they never ask the database); a real claim waits for the lock."""
    rows = await issue_codes(client, world, 2)
    payload = codes.parse(rows[0]["code"]).payload
    assert payload is not None
    forged = codes.sign_transparency(payload, b"not the brand's secret key......")
    await claim(client, world, rows[0]["code"])  # the station key is now cached
    holder = await asyncpg.connect(dsn)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("lock table units in access exclusive mode")
        for scan, reason in [(forged, "forged"), ("hello", "malformed")] * 10:
            reply = await asyncio.wait_for(claim(client, world, scan), timeout=5)
            assert (reply["result"], reply["reason"]) == ("fail", reason)
        real = asyncio.create_task(claim(client, world, rows[1]["code"]))
        await asyncio.sleep(0.5)
        assert not real.done()  # the lock is real: a check that queries waits for it
        await transaction.rollback()
        assert (await asyncio.wait_for(real, timeout=10))["result"] == "pass"
    finally:
        await holder.close()


async def test_totes_sharing_units_in_other_orders_do_not_deadlock(
    client: httpx.AsyncClient, world: World
) -> None:
    """Two stations scanning the same (cloned) units in opposite orders at once: both
    answer, and each unit passes once (claims lock units in code order)."""
    rows = await issue_codes(client, world, 40)
    codes_ = [r["code"] for r in rows]

    for round_ in range(4):
        pair = codes_[round_ * 10 : round_ * 10 + 10]
        forward, backward = await asyncio.gather(
            claim_tote(client, world, f"A-{round_}", pair),
            claim_tote(client, world, f"B-{round_}", pair[::-1]),
        )
        passes = [a["result"] == "pass" for a in forward] + [
            b["result"] == "pass" for b in backward[::-1]
        ]
        assert sum(passes) == len(pair)


async def test_the_claim_and_customer_statements_answer_their_records_fields(dsn: str) -> None:
    """The claims build their records by position, not by name: each statement's columns
    must be its record's fields, in order. The customer scan reads its columns by name: the
    statement answers each field (the brand's face as brand_* columns) and nothing more."""
    from transparency.db import scans
    from transparency.domain.verification import BrandFace, Claimed, CustomerScan, ScanHistory

    conn = await asyncpg.connect(dsn)
    try:
        columns = {
            sql: [a.name for a in (await conn.prepare(sql)).get_attributes()]
            for sql in (scans._CLAIM, scans._CLAIM_EACH, scans._CLAIM_ONE, scans._CUSTOMER)
        }
    finally:
        await conn.close()
    claimed = [f.name for f in fields(Claimed)]
    assert columns[scans._CLAIM] == columns[scans._CLAIM_EACH] == claimed
    assert columns[scans._CLAIM_ONE] == claimed
    customer = [f.name for f in fields(CustomerScan) if f.name not in ("history", "brand")]
    brand = ["brand_" + f.name.removeprefix("brand_") for f in fields(BrandFace)]
    history = ["customer_scans", "regions", "scans_after_shipping"]
    assert len(history) == len(fields(ScanHistory))
    assert sorted(columns[scans._CUSTOMER]) == sorted(customer + brand + history)
