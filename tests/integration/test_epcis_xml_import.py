"""EPCIS 1.2 and 2.0 XML imports: the same path, checks and report as JSON-LD."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import pytest

from tests.support import paths
from tests.support.world import World, bearer, make_brand
from tests.unit.test_epcis_xml import BILLION_LAUGHS

DATA = paths.DATA / "epcis"
GTIN = "10614141073464"  # urn:epc:id:sgtin:0614141.107346.*: three SGTINs of the documents
COMMISSIONED = {
    (f"(01){GTIN}(21)2017", "LOT1", "2027-01-31"),
    (f"(01){GTIN}(21)2018", "LOT1", "2027-01-31"),
    (f'(01){GTIN}(21)A/B%"', "LOT1", "2027-01-31"),
}


async def brand_with_product(client: httpx.AsyncClient, admin: str) -> tuple[str, str]:
    """A brand holding the GS1 example prefix 0614141, and its product ``GTIN``."""
    _, key = await make_brand(client, admin, ("0614141",))
    r = await client.post("/v1/products", json={"gtin": GTIN, "name": "Kit"}, headers=bearer(key))
    assert r.status_code == 201, r.text
    product_id: str = r.json()["id"]
    return key, product_id


async def post(
    client: httpx.AsyncClient,
    key: str,
    product: str,
    content: bytes,
    media: str,
    **params: str,
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/products/{product}/serial-imports",
        params={"mode": "accept_valid", **params},
        content=content,
        headers={**bearer(key), "content-type": media},
    )
    assert r.status_code == 202, r.text
    for _ in range(400):
        batch: dict[str, Any] = (
            await client.get(r.headers["location"], headers=bearer(key))
        ).json()
        if batch["status"] in ("done", "failed"):
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError("import did not finish")


async def registered(client: httpx.AsyncClient, key: str, batch: dict[str, Any]) -> set[Any]:
    r = await client.get(f"/v1/code-batches/{batch['id']}/codes.csv", headers=bearer(key))
    return {(row["code"], row["lot"], row["expiry"]) for row in csv.DictReader(io.StringIO(r.text))}


@pytest.mark.parametrize(
    ("name", "media"),
    [
        ("transparency-commissioning-1.2.xml", "application/xml"),
        ("transparency-commissioning-2.0.xml", "text/xml; charset=utf-8"),
    ],
)
async def test_an_xml_document_registers_the_units_it_commissions(
    client: httpx.AsyncClient, world: World, name: str, media: str
) -> None:
    key, product = await brand_with_product(client, world.admin)
    batch = await post(client, key, product, (DATA / name).read_bytes(), media)
    assert batch["status"] == "done", batch
    report = batch["report"]
    assert (report["accepted"], report["rejected"], report["rows"]) == (3, 2, 5)
    assert {r["reason"] for r in report["first_rejections"]} == {"wrong_gtin"}
    assert report["first_rejections"][0]["position"] == "epcisBody.eventList[2].epcList[0]"
    assert await registered(client, key, batch) == COMMISSIONED


async def test_xml_and_json_ld_of_the_same_events_report_the_same(
    client: httpx.AsyncClient, world: World
) -> None:
    # all_or_nothing: the first import registers nothing, so the second meets the same state.
    key, product = await brand_with_product(client, world.admin)
    reports = []
    for name, media in (
        ("transparency-commissioning.jsonld", "application/ld+json"),
        ("transparency-commissioning-1.2.xml", "application/xml"),
        ("transparency-commissioning-2.0.xml", "text/xml"),
    ):
        content = (DATA / name).read_bytes()
        batch = await post(client, key, product, content, media, mode="all_or_nothing")
        reports.append(batch["report"])
    assert reports[0]["rows"] == 5
    assert reports[0] == reports[1] == reports[2]


async def test_kind_epcis_reads_xml_whatever_the_content_type(
    client: httpx.AsyncClient, world: World
) -> None:
    key, product = await brand_with_product(client, world.admin)
    content = (DATA / "transparency-commissioning-2.0.xml").read_bytes()
    utf16 = content.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    batch = await post(client, key, product, utf16, "application/octet-stream", kind="epcis")
    assert batch["status"] == "done", batch
    assert batch["report"]["accepted"] == 3


async def test_an_all_or_nothing_xml_import_registers_nothing_when_a_row_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    key, product = await brand_with_product(client, world.admin)
    content = (DATA / "transparency-commissioning-1.2.xml").read_bytes()
    batch = await post(client, key, product, content, "application/xml", mode="all_or_nothing")
    assert batch["status"] == "done"
    assert (batch["report"]["accepted"], batch["report"]["registered"]) == (0, False)


async def test_a_query_document_imports_nothing_and_refuses_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    key, product = await brand_with_product(client, world.admin)
    content = (DATA / "transparency-query-2.0.xml").read_bytes()
    batch = await post(client, key, product, content, "application/xml")
    assert batch["status"] == "done", batch
    assert (batch["report"]["accepted"], batch["report"]["rejected"]) == (0, 0)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (BILLION_LAUGHS, "line 3: a DTD that declares entities or elements is refused"),
        (
            (DATA / "transparency-masterdata-2.0.xml").read_bytes(),
            "line 4: EPCISMasterDataDocument is no EPCISDocument or EPCISQueryDocument",
        ),
        (b"<a>\n<b></a>", "line 2 column 8: Opening and ending tag mismatch"),
        (
            b'<e:EPCISDocument xmlns:e="urn:epcglobal:epcis:xsd:2">\n'
            + b"<x>" * 100
            + b"</x>" * 100
            + b"</e:EPCISDocument>",
            "line 2: nested deeper than 64 elements",
        ),
    ],
)
async def test_a_hostile_or_broken_xml_document_fails_its_import_with_the_place(
    client: httpx.AsyncClient, world: World, content: bytes, error: str
) -> None:
    key, product = await brand_with_product(client, world.admin)
    batch = await post(client, key, product, content, "application/xml")
    assert batch["status"] == "failed"
    assert batch["error"].startswith(error), batch["error"]
    assert await registered(client, key, batch) == set()


async def test_an_xml_document_over_the_limit_fails_before_it_is_parsed(
    client: httpx.AsyncClient, world: World
) -> None:
    """100 MB (under the upload limit of 256 MiB): spooled to disk, then refused by size."""
    key, product = await brand_with_product(client, world.admin)
    head = b'<e:EPCISDocument xmlns:e="urn:epcglobal:epcis:xsd:2"><EPCISBody><EventList>'
    content = head + b" " * (100 * 1_048_576)
    batch = await post(client, key, product, content, "application/xml")
    assert batch["status"] == "failed"
    assert batch["error"] == "an EPCIS XML document holds at most 67108864 bytes"


async def test_the_import_media_types_are_announced(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    body = schema["paths"]["/v1/products/{product_id}/serial-imports"]["post"]["requestBody"]
    assert {"application/xml", "text/xml"} <= set(body["content"])
