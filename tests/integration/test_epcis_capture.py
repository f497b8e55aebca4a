"""EPCIS 2.0 capture (REST binding): jobs, error behaviours, limits, units acted on."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import httpx

from tests.support.world import World, bearer, issue_codes
from transparency.domain import epcis
from transparency.services import epcis as service

TIME = "2026-03-01T10:00:00.000+01:00"


def sgtin(gtin: str, serial: str) -> str:
    return epcis.sgtin_urn(gtin, serial, 7)


def event(**fields: Any) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventTime": TIME, "eventTimeZoneOffset": "+01:00",
            "action": "OBSERVE", **fields}  # fmt: skip


def commissioning(epcs: list[str], **fields: Any) -> dict[str, Any]:
    return event(action="ADD", bizStep="commissioning", disposition="active", epcList=epcs,
                 **fields)  # fmt: skip


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {"@context": [epcis.EPCIS_CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": TIME, "epcisBody": {"eventList": list(events)}}  # fmt: skip


async def capture(
    client: httpx.AsyncClient,
    key: str,
    doc: Any,
    behaviour: str | None = None,
    status: int = 202,
    media_type: str = "application/ld+json",
) -> dict[str, Any]:
    headers = {**bearer(key), "content-type": media_type}
    if behaviour is not None:
        headers["GS1-Capture-Error-Behaviour"] = behaviour
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    r = await client.post("/v1/epcis/capture", content=body, headers=headers)
    assert r.status_code == status, r.text
    if status != 202:
        return dict(r.json())
    assert r.headers["GS1-EPCIS-Capture-Limit"] == str(service.CAPTURE_LIMIT)
    for _ in range(400):
        job: dict[str, Any] = (await client.get(r.headers["location"], headers=bearer(key))).json()
        if not job["running"]:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("capture did not finish")


async def state_of(client: httpx.AsyncClient, world: World, code: str) -> str:
    r = await client.get(f"/v1/codes/{code}/history", headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


async def test_capture_answers_202_with_a_job_that_ends_in_success(
    client: httpx.AsyncClient, world: World
) -> None:
    gtin = world.product_a["gtin"]
    job = await capture(client, world.brand_a, document(commissioning([sgtin(gtin, "C-1")])))
    assert (job["success"], job["captured"], job["errors"]) == (True, 1, [])
    assert job["captureErrorBehaviour"] == "rollback"
    assert await state_of(client, world, f"(01){gtin}(21)C-1") == "active"


async def test_commissioning_registers_units_and_shipping_then_destroying_moves_them(
    client: httpx.AsyncClient, world: World
) -> None:
    gtin = world.product_a["gtin"]
    epcs = [sgtin(gtin, "S-1"), sgtin(gtin, "S-2")]
    doc = document(
        commissioning(epcs, ilmd={"cbvmda:lotNumber": "L9"}),
        event(bizStep="shipping", disposition="in_transit", epcList=epcs[:1]),
        event(action="DELETE", bizStep="destroying", epcList=epcs[1:],
              eventTime="2026-03-01T11:00:00.000+01:00"),
    )  # fmt: skip
    job = await capture(client, world.brand_a, doc)
    assert job["success"], job
    assert await state_of(client, world, f"(01){gtin}(21)S-1") == "shipped"
    assert await state_of(client, world, f"(01){gtin}(21)S-2") == "destroyed"


async def test_rollback_refuses_the_whole_capture_at_one_bad_event(
    client: httpx.AsyncClient, world: World
) -> None:
    gtin = world.product_a["gtin"]
    doc = document(
        commissioning([sgtin(gtin, "R-1")]),
        event(bizStep="shipping", epcList=[sgtin(gtin, "R-unknown")]),
        {"type": "ObjectEvent", "action": "OBSERVE"},  # no eventTime
    )
    job = await capture(client, world.brand_a, doc, "rollback")
    assert (job["success"], job["captured"]) == (False, 0)
    assert [e["instance"] for e in job["errors"]] == [
        "#/epcisBody/eventList/1",
        "#/epcisBody/eventList/2",
    ]
    assert "unknown_unit" in job["errors"][0]["detail"]
    r = await client.get(f"/v1/codes/(01){gtin}(21)R-1/history", headers=bearer(world.brand_a))
    assert r.status_code == 404  # nothing registered


async def test_proceed_stores_the_good_events_and_lists_the_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    gtin = world.product_a["gtin"]
    doc = document(
        commissioning([sgtin(gtin, "P-1")]),
        event(bizStep="shipping", epcList=[sgtin(gtin, "P-1")]),
        event(bizStep="shipping", epcList=[sgtin(gtin, "P-1")]),  # shipped already
    )
    doc["epcisBody"]["eventList"][2]["eventTime"] = "2026-03-01T12:00:00.000+01:00"
    job = await capture(client, world.brand_a, doc, "proceed")
    assert (job["success"], job["captured"], job["events"]) == (False, 2, 3)
    assert len(job["errors"]) == 1
    assert "invalid_transition" in job["errors"][0]["detail"]
    assert await state_of(client, world, f"(01){gtin}(21)P-1") == "shipped"


async def test_a_duplicate_event_is_recognised_by_its_hash(
    client: httpx.AsyncClient, world: World
) -> None:
    one = event(bizStep="receiving", epcList=["urn:epc:id:sgtin:0614141.107346.2017"])
    first = await capture(client, world.brand_a, document(one))
    # The same facts spelled otherwise: a Digital Link EPC, another zone, the CBV URN.
    same = {
        **one,
        "epcList": ["https://example.com/01/10614141073464/21/2017"],
        "eventTime": "2026-03-01T09:00:00Z",
        "bizStep": "urn:epcglobal:cbv:bizstep:receiving",
    }
    second = await capture(client, world.brand_a, document(same, same))
    assert (first["captured"], second["captured"], second["duplicates"]) == (1, 0, 2)
    assert second["success"]


async def test_event_ids_are_filled_in_with_the_event_hash(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post(
        "/v1/epcis/events",
        json=event(bizStep="inspecting", epcList=["urn:epc:id:sscc:0614141.1234567890"]),
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 201, r.text
    assert r.json()["eventID"].startswith("ni:///sha-256;")
    again = await client.post(
        "/v1/epcis/events",
        json=event(bizStep="inspecting", epcList=["urn:epc:id:sscc:0614141.1234567890"]),
        headers=bearer(world.brand_a),
    )
    assert again.status_code == 200
    assert again.json() == r.json()


async def test_a_bad_single_event_is_a_problem_and_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post("/v1/epcis/events", json={"type": "ObjectEvent"},
                          headers=bearer(world.brand_a))  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_limits_are_advertised_and_a_larger_body_gets_413(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.options("/v1/epcis/capture")
    assert r.headers["GS1-EPCIS-Capture-File-Size-Limit"] == str(service.CAPTURE_FILE_SIZE_LIMIT)
    body = b" " * (service.CAPTURE_FILE_SIZE_LIMIT + 1)
    problem = await capture(client, world.brand_a, body, status=413)
    assert problem["type"].endswith("/payload-too-large")


async def test_more_events_than_the_capture_limit_get_413(
    client: httpx.AsyncClient, world: World, monkeypatch: Any
) -> None:
    monkeypatch.setattr(service, "CAPTURE_LIMIT", 2)
    doc = document(
        *(
            event(bizStep="receiving", epcList=[f"urn:epc:id:sscc:0614141.{i:010d}"])
            for i in range(3)
        )
    )
    await capture(client, world.brand_a, doc, status=413)


async def test_hostile_json_is_refused_with_its_position(
    client: httpx.AsyncClient, world: World
) -> None:
    problem = await capture(client, world.brand_a, b'{"a": 1,\n "a": 2}', status=422)
    assert "line 2 column" in problem["detail"], problem


async def test_another_brand_cannot_read_a_capture_job(
    client: httpx.AsyncClient, world: World
) -> None:
    job = await capture(
        client,
        world.brand_a,
        document(event(bizStep="receiving", epcList=["urn:epc:id:sscc:0614141.0000000001"])),
    )
    r = await client.get(f"/v1/epcis/capture/{job['captureID']}", headers=bearer(world.brand_b))
    assert r.status_code == 404
    r = await client.get(f"/v1/epcis/capture/{job['captureID']}", headers=bearer(world.station))
    assert r.status_code == 403


async def test_shipping_an_issued_transparency_code_follows_the_lifecycle(
    client: httpx.AsyncClient, world: World
) -> None:
    code = (await issue_codes(client, world, 1))[0]["code"]
    epc = f"urn:transparency:code:{code}"
    job = await capture(
        client,
        world.brand_a,
        document(event(bizStep="decommissioning", action="DELETE", epcList=[epc])),
    )
    assert job["success"], job
    assert await state_of(client, world, code) == "revoked"
    again = await capture(client, world.brand_a, document(event(bizStep="shipping", epcList=[epc])))
    assert not again["success"]
    assert "invalid_transition" in again["errors"][0]["detail"]


async def test_an_xml_document_is_captured_as_its_json_ld_would_be(
    client: httpx.AsyncClient, world: World
) -> None:
    gtin = world.product_a["gtin"]
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
    creationDate="2026-03-01T10:00:00.000+01:00">
  <EPCISBody><EventList><ObjectEvent>
    <eventTime>2026-03-01T10:00:00.000+01:00</eventTime>
    <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
    <epcList><epc>{sgtin(gtin, "X-1")}</epc></epcList>
    <action>ADD</action>
    <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
  </ObjectEvent></EventList></EPCISBody>
</epcis:EPCISDocument>""".encode()
    r = await client.post(
        "/v1/epcis/capture",
        content=xml,
        headers={**bearer(world.brand_a), "content-type": "application/xml"},
    )
    assert r.status_code == 202, r.text
    for _ in range(200):
        job = (await client.get(r.headers["location"], headers=bearer(world.brand_a))).json()
        if not job["running"]:
            break
        await asyncio.sleep(0.05)
    assert job["success"], job
    assert await state_of(client, world, f"(01){gtin}(21)X-1") == "active"
    answer = await client.get(
        "/v1/epcis/events",
        params={"EQ_bizStep": "commissioning", "MATCH_epc": sgtin(gtin, "X-1")},
        headers={**bearer(world.brand_a), "accept": "application/xml"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert b"EPCISQueryDocument" in answer.content
    assert sgtin(gtin, "X-1").encode() in answer.content or b"X-1" in answer.content


async def test_a_brand_at_its_cap_of_running_captures_gets_429(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(service.MAX_RUNNING_CAPTURES):
            await conn.execute(
                "insert into epcis_captures (id, brand_id, error_behaviour)"
                " values (gen_random_uuid(), $1, 'rollback')",
                uuid.UUID(world.brand_a_id),
            )
    finally:
        await conn.close()
    doc = document(event(bizStep="receiving", epcList=["urn:epc:id:sscc:0614141.0000000009"]))
    problem = await capture(client, world.brand_a, doc, status=429)
    assert problem["type"].endswith("/limit-exceeded")
    other = await capture(client, world.brand_b, doc)  # another brand is not held up
    assert other["success"]


async def test_a_capture_that_lost_its_process_stops_counting_and_reads_failed(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    conn = await asyncpg.connect(dsn)
    lost = uuid.uuid4()
    try:
        for ident in (lost, uuid.uuid4()):
            await conn.execute(
                "insert into epcis_captures (id, brand_id, error_behaviour, created_at)"
                " values ($1, $2, 'rollback', now() - interval '1 hour')",
                ident,
                uuid.UUID(world.brand_a_id),
            )
    finally:
        await conn.close()
    doc = document(event(bizStep="receiving", epcList=["urn:epc:id:sscc:0614141.0000000010"]))
    assert (await capture(client, world.brand_a, doc))["success"]
    job = (await client.get(f"/v1/epcis/capture/{lost}", headers=bearer(world.brand_a))).json()
    assert (job["running"], job["success"]) == (False, False)
    assert job["errors"][0]["title"] == "Capture abandoned"


async def test_an_unknown_error_behaviour_or_media_type_is_refused_before_any_job(
    client: httpx.AsyncClient, world: World
) -> None:
    doc = document(event(bizStep="receiving", epcList=["urn:epc:id:sscc:0614141.0000000011"]))
    problem = await capture(client, world.brand_a, doc, behaviour="ignore", status=422)
    assert problem["errors"][0]["field"] == "GS1-Capture-Error-Behaviour"
    r = await client.post(
        "/v1/epcis/capture", content=b"serial\nA1\n",
        headers={**bearer(world.brand_a), "content-type": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 422, r.text
    listed = await client.get("/v1/epcis/capture", headers=bearer(world.brand_a))
    assert listed.json() == []


async def test_a_partner_posts_an_epcis_1_2_xml_file_and_queries_the_resulting_events(
    client: httpx.AsyncClient, world: World
) -> None:
    """The issue's "done when": EPCIS 1.2 XML (1.2's extension wrappers, CBV URNs) captured,
    acting on the units, then the events read back by EPC and by bizStep."""
    gtin = world.product_a["gtin"]
    epcs = [sgtin(gtin, "X12-1"), sgtin(gtin, "X12-2")]
    items = "".join(f"<epc>{e}</epc>" for e in epcs)
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1"
    xmlns:cbvmda="urn:epcglobal:cbv:mda" schemaVersion="1.2" creationDate="{TIME}">
  <EPCISBody><EventList>
    <ObjectEvent>
      <eventTime>2026-03-01T10:00:00.000+01:00</eventTime>
      <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
      <baseExtension><eventID>urn:uuid:6a1bd4a6-4a6f-4d8b-9c3a-0000000012a1</eventID></baseExtension>
      <epcList>{items}</epcList>
      <action>ADD</action>
      <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
      <disposition>urn:epcglobal:cbv:disp:active</disposition>
      <extension><ilmd><cbvmda:lotNumber>L12</cbvmda:lotNumber></ilmd></extension>
    </ObjectEvent>
    <ObjectEvent>
      <eventTime>2026-03-01T11:00:00.000+01:00</eventTime>
      <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
      <epcList><epc>{epcs[0]}</epc></epcList>
      <action>OBSERVE</action>
      <bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep>
      <disposition>urn:epcglobal:cbv:disp:in_transit</disposition>
    </ObjectEvent>
  </EventList></EPCISBody>
</epcis:EPCISDocument>"""
    job = await capture(client, world.brand_a, xml.encode(), media_type="application/xml")
    assert (job["success"], job["captured"], job["errors"]) == (True, 2, [])
    assert await state_of(client, world, f"(01){gtin}(21)X12-1") == "shipped"
    assert await state_of(client, world, f"(01){gtin}(21)X12-2") == "active"

    r = await client.get(f"/v1/epcis/epcs/{epcs[0]}/events", headers=bearer(world.brand_a))
    assert r.status_code == 200, r.text
    captured = [
        e for e in r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        if e.get("eventID") == "urn:uuid:6a1bd4a6-4a6f-4d8b-9c3a-0000000012a1"
        or e.get("bizStep") == "shipping"
    ]  # fmt: skip
    assert sorted(e["bizStep"] for e in captured) == ["commissioning", "shipping"]
    r = await client.get(
        "/v1/epcis/events",
        params={"EQ_bizStep": "commissioning", "MATCH_epc": epcs[1]},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200, r.text
    (found,) = r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert found["eventID"] == "urn:uuid:6a1bd4a6-4a6f-4d8b-9c3a-0000000012a1"
    other = await client.get(f"/v1/epcis/epcs/{epcs[0]}/events", headers=bearer(world.brand_b))
    assert other.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []
