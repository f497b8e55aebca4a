"""EPCIS 2.0 simple event query: captured events and the service's own records, filters,
paging, one EPC's history, each brand's own events only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.integration.test_epcis_capture import capture, document, event, sgtin
from tests.support.world import World, bearer, issue_codes, ship


async def query(
    client: httpx.AsyncClient, key: str, path: str = "/v1/epcis/events", **params: Any
) -> tuple[list[dict[str, Any]], httpx.Response]:
    r = await client.get(path, params=params, headers=bearer(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "EPCISQueryDocument"
    return body["epcisBody"]["queryResults"]["resultsBody"]["eventList"], r


def sscc(i: int) -> str:
    return f"urn:epc:id:sscc:0614141.{i:010d}"


async def test_filters_select_by_type_step_disposition_time_and_location(
    client: httpx.AsyncClient, world: World
) -> None:
    doc = document(
        event(bizStep="receiving", disposition="in_progress", epcList=[sscc(1)],
              bizLocation={"id": "urn:epc:id:sgln:0614141.07346.0"}),
        event(bizStep="shipping", disposition="in_transit", epcList=[sscc(2)],
              eventTime="2026-03-02T10:00:00.000+01:00"),
    )  # fmt: skip
    assert (await capture(client, world.brand_a, doc))["success"]
    found, _ = await query(client, world.brand_a, eventType="ObjectEvent", EQ_bizStep="receiving")
    assert [e["epcList"] for e in found] == [[sscc(1)]]
    found, _ = await query(client, world.brand_a, EQ_bizStep="urn:epcglobal:cbv:bizstep:shipping",
                           EQ_disposition="in_transit")  # fmt: skip
    assert [e["epcList"] for e in found] == [[sscc(2)]]
    found, _ = await query(client, world.brand_a, GE_eventTime="2026-03-02T00:00:00Z")
    assert [e["epcList"] for e in found] == [[sscc(2)]]
    found, _ = await query(client, world.brand_a, LT_eventTime="2026-03-02T00:00:00Z",
                           EQ_bizLocation="https://id.gs1.org/414/0614141073467")  # fmt: skip
    assert [e["epcList"] for e in found] == [[sscc(1)]]
    found, _ = await query(
        client, world.brand_a, MATCH_epc="https://id.gs1.org/00/006141411234567890"
    )
    assert found == []
    found, _ = await query(client, world.brand_a, MATCH_epc=sscc(2))
    assert len(found) == 1
    assert found[0]["recordTime"]


async def test_pages_follow_next_page_token_without_repeats(
    client: httpx.AsyncClient, world: World
) -> None:
    doc = document(*(event(bizStep="receiving", epcList=[sscc(100 + i)]) for i in range(5)))
    assert (await capture(client, world.brand_a, doc))["success"]
    seen: list[str] = []
    params: dict[str, Any] = {"EQ_bizStep": "receiving", "perPage": 2}
    for _ in range(5):
        found, r = await query(client, world.brand_a, **params)
        seen += [e["eventID"] for e in found]
        if "link" not in r.headers:
            break
        token = r.headers["link"].split("nextPageToken=")[1].split(">")[0]
        params["nextPageToken"] = token
    assert len(seen) == 5 == len(set(seen))


async def test_each_brand_sees_its_own_events_only(client: httpx.AsyncClient, world: World) -> None:
    assert (
        await capture(
            client, world.brand_a, document(event(bizStep="receiving", epcList=[sscc(7)]))
        )
    )["success"]
    found, _ = await query(client, world.brand_b, MATCH_epc=sscc(7))
    assert found == []
    found, _ = await query(client, world.brand_b)
    assert found == []
    r = await client.get("/v1/epcis/events", headers=bearer(world.station))
    assert r.status_code == 403


async def test_one_epcs_history_holds_its_issuance_pass_and_captured_events(
    client: httpx.AsyncClient, world: World
) -> None:
    code = (await issue_codes(client, world, 1))[0]["code"]
    await ship(client, world, code)
    epc = f"urn:transparency:code:{code}"
    r = await client.post(
        "/v1/epcis/events",
        json=event(bizStep="receiving", epcList=[epc], eventTime="2030-01-01T00:00:00.000Z",
                   eventTimeZoneOffset="+00:00"),
        headers=bearer(world.brand_a),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    found, _ = await query(client, world.brand_a, f"/v1/epcis/epcs/{epc}/events")
    assert [(e["bizStep"], e["epcList"]) for e in found] == [
        ("commissioning", [epc]),
        ("shipping", [epc]),
        ("receiving", [epc]),
    ]
    assert found[1]["readPoint"]["id"] == f"urn:transparency:site:{world.site_id}"
    found, _ = await query(client, world.brand_b, f"/v1/epcis/epcs/{epc}/events")
    assert found == []


async def test_a_gs1_unit_is_found_under_its_urn_or_its_digital_link(
    client: httpx.AsyncClient, world: World
) -> None:
    gtin = world.product_a["gtin"]
    epc = sgtin(gtin, "Q-1")
    doc = document(event(action="ADD", bizStep="commissioning", epcList=[epc]))
    assert (await capture(client, world.brand_a, doc))["success"]
    link = f"https://id.gs1.org/01/{gtin}/21/Q-1"
    by_urn, _ = await query(client, world.brand_a, f"/v1/epcis/epcs/{epc}/events")
    by_link, _ = await query(client, world.brand_a, f"/v1/epcis/epcs/{link}/events")
    assert [e["eventID"] for e in by_urn] == [e["eventID"] for e in by_link]
    assert len(by_urn) == 1  # the captured commissioning, not a second issuance event


async def test_brand_withdrawals_and_batches_read_as_events(
    client: httpx.AsyncClient, world: World
) -> None:
    code = (await issue_codes(client, world, 2))[0]["code"]
    recall = {"action": "recall", "reason": "r", "code": code}
    r = await client.post("/v1/units/actions", json=recall, headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    found, _ = await query(client, world.brand_a, EQ_disposition="recalled")
    assert [e["epcList"] for e in found] == [[f"urn:transparency:code:{code}"]]
    found, _ = await query(client, world.brand_a, EQ_bizStep="commissioning")
    assert [e["quantityList"][0]["quantity"] for e in found] == [2]


async def test_an_unknown_parameter_or_token_is_a_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    for params in ({"EQ_colour": "red"}, {"nextPageToken": "nope"}, {"perPage": "0"},
                   {"GE_eventTime": "yesterday"}):  # fmt: skip
        r = await client.get("/v1/epcis/events", params=params, headers=bearer(world.brand_a))
        assert r.status_code == 422, (params, r.text)


async def test_a_batch_recall_is_in_the_history_of_each_of_its_units(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/code-batches",
        json={"count": 2}, headers=bearer(world.brand_a),
    )  # fmt: skip
    batch_id = r.headers["location"].rsplit("/", 1)[1]
    for _ in range(400):
        batch = (await client.get(r.headers["location"], headers=bearer(world.brand_a))).json()
        if batch["status"] == "done":
            break
        await asyncio.sleep(0.05)
    codes = await client.get(f"{r.headers['location']}/codes.csv", headers=bearer(world.brand_a))
    code = codes.text.splitlines()[1].split(",")[0]
    recall = {"action": "recall", "reason": "r", "batch_id": batch_id}
    r = await client.post("/v1/units/actions", json=recall, headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    epc = f"urn:transparency:code:{code}"
    found, _ = await query(client, world.brand_a, f"/v1/epcis/epcs/{epc}/events")
    recalled = [e for e in found if e.get("disposition") == "recalled"]
    assert len(recalled) == 1
    assert recalled[0]["quantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{world.product_a['gtin']}", "quantity": 2}
    ]
