"""Every EPCIS export, JSON-LD and XML, is valid under GS1's schemas and says the same."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.support.world import World, bearer, finished_batch, issue_batch
from tests.unit.test_epcis_xml import EPCIS_2_XSD, assert_json_valid, assert_valid
from transparency.domain import epcis
from transparency.domain.epcis_xml import document_from_xml
from transparency.domain.identity import Principal, Role
from transparency.services import exports


async def issue_gs1(client: httpx.AsyncClient, world: World, count: int) -> dict[str, Any]:
    return await issue_batch(client, world, count, format="gs1", lot="L9", expiry="2028-02-29")


async def get(client: httpx.AsyncClient, world: World, batch: dict[str, Any], name: str) -> Any:
    r = await client.get(
        f"/v1/code-batches/{batch['id']}/{name}",
        params={"company_prefix_length": 7},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200, r.text
    return r


async def test_the_xml_and_json_ld_exports_are_valid_and_commission_every_unit(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Events of 10 EPCs rather than 10,000: 25 units are streamed as three events.
    monkeypatch.setattr(exports, "_EPCIS_EVENT_SIZE", 10)
    batch = await issue_gs1(client, world, 25)
    xml = await get(client, world, batch, "epcis.xml")
    json_ld = await get(client, world, batch, "epcis.jsonld")
    assert xml.headers["content-type"] == "application/xml"
    assert {"epcis.jsonld", "epcis.xml"} <= set(batch["files"])
    assert json_ld.headers["content-type"] == "application/ld+json"

    assert_valid(EPCIS_2_XSD, xml.content)
    assert_json_valid(json_ld.json())
    from_xml = document_from_xml(xml.content)
    assert [len(e["epcList"]) for e in from_xml["epcisBody"]["eventList"]] == [10, 10, 5]
    assert from_xml["transparency:brandName"] == json_ld.json()["transparency:brandName"]

    commissioned, refused = epcis.parse_commissioning(from_xml)
    assert refused == []
    # The same units in both; a batch's units are read in no particular order (on Citus,
    # in the order the shards answer), so each document may list them in its own order.
    from_json_ld, refused_json_ld = epcis.parse_commissioning(json_ld.json())
    assert refused_json_ld == []
    assert sorted((c.gtin, c.serial, c.lot, c.expiry) for c in from_json_ld) == sorted(
        (c.gtin, c.serial, c.lot, c.expiry) for c in commissioned
    )
    codes = await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
    rows = csv.DictReader(io.StringIO(codes.text))
    assert sorted(f"(01){c.gtin}(21){c.serial}" for c in commissioned) == sorted(
        row["code"] for row in rows
    )
    assert {(c.lot, str(c.expiry)) for c in commissioned} == {("L9", "2028-02-29")}


async def test_an_empty_export_is_still_a_valid_document(
    client: httpx.AsyncClient, world: World
) -> None:
    """An import that registered nothing is a finished GS1 batch of no units."""
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/serial-imports",
        params={"mode": "all_or_nothing"},
        content=b"serial\n" + b"bad serial with spaces\n",
        headers={**bearer(world.brand_a), "content-type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch = await finished_batch(client, world.brand_a, r.headers["location"], ("done", "failed"))
    assert batch["status"] == "done", batch
    xml = await get(client, world, batch, "epcis.xml")
    assert_valid(EPCIS_2_XSD, xml.content)
    assert document_from_xml(xml.content)["epcisBody"]["eventList"] == []
    assert_json_valid((await get(client, world, batch, "epcis.jsonld")).json())


async def test_the_xml_export_is_refused_as_the_json_ld_one_is(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issue_gs1(client, world, 2)
    path = f"/v1/code-batches/{batch['id']}"
    other = await client.get(f"{path}/epcis.xml", headers=bearer(world.brand_b))
    assert (other.status_code, other.json()["type"]) == (404, "/problems/not-found")
    unknown = await client.get(f"{path}/epcis.yaml", headers=bearer(world.brand_a))
    assert (unknown.status_code, unknown.json()["type"]) == (404, "/problems/not-found")
    own = await issue_batch(client, world, 2)
    not_gs1 = await client.get(
        f"/v1/code-batches/{own['id']}/epcis.xml", headers=bearer(world.brand_a)
    )
    assert not_gs1.status_code == 409


async def test_an_xml_export_whose_client_waits_holds_no_database_connection(
    client: httpx.AsyncClient, world: World, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "_EPCIS_EVENT_SIZE", 100)
    batch = await issue_gs1(client, world, 2500)
    pool: asyncpg.Pool = app.state.lifespan_state["pool"]
    actor = Principal(key_id="test", role=Role.BRAND, brand_id=UUID(world.brand_a_id))
    stream = await exports.epcis_file(
        pool, actor, UUID(batch["id"]), company_prefix_length=7, now=datetime.now(UTC), xml=True
    )
    head = await anext(stream)  # the client takes the head, then waits
    deadline = time.monotonic() + 30
    while pool.get_idle_size() < pool.get_size():  # the batch is read into the spool
        assert time.monotonic() < deadline, "the export kept a connection"
        await asyncio.sleep(0.05)
    async with asyncio.timeout(1):  # every connection is free for others
        connections = [await pool.acquire() for _ in range(pool.get_size())]
    for conn in connections:
        await pool.release(conn)
    rest = b"".join([chunk async for chunk in stream])
    assert_valid(EPCIS_2_XSD, head + rest)
    assert len(document_from_xml(head + rest)["epcisBody"]["eventList"]) == 25
