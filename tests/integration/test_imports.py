"""Brand-native serial imports: every row checked, a report, idempotent re-posts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import paths
from tests.support.world import World, bearer
from transparency.domain import codes, epcis, gs1
from transparency.domain import imports as rules
from transparency.services import imports as service

DATA = paths.DATA / "epcis"


async def post_import(
    client: httpx.AsyncClient,
    world: World,
    content: str,
    media: str,
    mode: str = "all_or_nothing",
    expect: int = 202,
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/products/{world.product_a['id']}/serial-imports",
        params={"mode": mode},
        content=content.encode(),
        headers={**bearer(world.brand_a), "content-type": media},
    )
    assert r.status_code == expect, r.text
    for _ in range(400):
        batch: dict[str, Any] = (
            await client.get(r.headers["location"], headers=bearer(world.brand_a))
        ).json()
        if batch["status"] in ("done", "failed"):
            return batch
        await asyncio.sleep(0.05)
    raise AssertionError("import did not finish")


async def units_of(client: httpx.AsyncClient, world: World, batch: dict[str, Any]) -> list[str]:
    r = await client.get(f"/v1/code-batches/{batch['id']}/codes.csv", headers=bearer(world.brand_a))
    return [row["code"] for row in csv.DictReader(io.StringIO(r.text))]


async def rejections(
    client: httpx.AsyncClient, world: World, batch: dict[str, Any]
) -> list[dict[str, str]]:
    r = await client.get(
        f"/v1/code-batches/{batch['id']}/rejections.csv", headers=bearer(world.brand_a)
    )
    return list(csv.DictReader(io.StringIO(r.text)))


MALFORMED_CSV = "\n".join(
    [
        "serial,lot,expiry",
        "A1,L1,2027-01-31",
        "A2",
        "A1,L2",
        "bad serial with spaces",
        "A3,L1,31/01/2027",
        "X" * 21,
    ]
)


async def test_a_malformed_csv_is_refused_whole_with_a_report(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await post_import(client, world, MALFORMED_CSV, "text/csv")
    assert batch["status"] == "done"
    report = batch["report"]
    assert (report["accepted"], report["rejected"], report["registered"]) == (0, 4, False)
    assert await units_of(client, world, batch) == []
    refused = await rejections(client, world, batch)
    assert [(r["position"], r["reason"]) for r in refused] == [
        ("line 4", "duplicate_in_file"),
        ("line 5", "invalid_serial"),
        ("line 6", "invalid_expiry"),
        ("line 7", "invalid_serial"),
    ]


async def test_accept_valid_rows_registers_the_rest(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await post_import(client, world, MALFORMED_CSV, "text/csv", mode="accept_valid")
    assert batch["report"]["accepted"] == 2
    gtin = world.product_a["gtin"]
    assert sorted(await units_of(client, world, batch)) == [
        f"(01){gtin}(21)A1",
        f"(01){gtin}(21)A2",
    ]


async def test_posting_the_same_file_again_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    content = "S1\nS2\nS3\n"
    first = await post_import(client, world, content, "text/csv")
    again = await post_import(client, world, content, "text/csv", expect=200)
    assert again["id"] == first["id"]
    assert len(await units_of(client, world, first)) == 3


async def test_serials_already_registered_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    await post_import(client, world, "R1\nR2\n", "text/csv")
    batch = await post_import(client, world, "R2\nR3\n", "text/csv", mode="accept_valid")
    assert batch["report"]["accepted"] == 1
    assert [(r["position"], r["reason"]) for r in await rejections(client, world, batch)] == [
        ("line 1", "already_registered")
    ]


async def test_gs1_lines_in_every_form(client: httpx.AsyncClient, world: World) -> None:
    gtin = world.product_a["gtin"]
    other = world.product_b["gtin"]
    lines = [
        f"]d201{gtin}21G1\x1d10LOT1",
        f"01{gtin}21G2^17271231",
        f"(01){gtin}(21)G3(10)LOT3",
        f"https://brand.example/p/01/{gtin}/21/G%2F4?10=LOT4",
        f"01{other}21G5",
        f"01{gtin[:-1]}{(int(gtin[-1]) + 1) % 10}21G6",
        "not a code at all",
    ]
    batch = await post_import(client, world, "\n".join(lines), "text/plain", mode="accept_valid")
    assert sorted(await units_of(client, world, batch)) == sorted(
        f"(01){gtin}(21){s}" for s in ("G1", "G2", "G3", "G/4")
    )
    reasons = {r["position"]: r["reason"] for r in await rejections(client, world, batch)}
    assert reasons["line 5"] == "wrong_gtin"
    assert reasons["line 6"] == "bad_check_digit"
    assert reasons["line 7"] in ("unknown_format", "invalid_ai")


async def test_repeats_across_pieces_of_a_file_are_refused_with_the_first_line(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "_PIECE", 100)  # three or four lines a piece
    gtin = world.product_a["gtin"]
    serials = [f"P{n}" for n in range(1, 41)]
    serials[24] = serials[29] = "P3"  # lines 25 and 30 repeat line 3, pieces later
    serials[34] = "P12"  # line 35 repeats line 12
    content = "".join(f"01{gtin}21{serial}\n" for serial in serials)
    batch = await post_import(client, world, content, "text/plain", mode="accept_valid")
    assert batch["report"]["accepted"] == 37
    assert [(r["position"], r["detail"]) for r in await rejections(client, world, batch)] == [
        ("line 25", "serial already at line 3"),
        ("line 30", "serial already at line 3"),
        ("line 35", "serial already at line 12"),
    ]
    assert len(set(await units_of(client, world, batch))) == 37
    refused = await post_import(client, world, content.replace("P", "Q"), "text/plain")
    assert (refused["report"]["accepted"], refused["report"]["rejected"]) == (0, 3)
    assert await units_of(client, world, refused) == []


@given(st.text(st.sampled_from("ab\x1d\n"), max_size=300), st.integers(min_value=1, max_value=40))
def test_pieces_of_a_line_file_join_back_with_their_line_numbers(text: str, size: int) -> None:
    parts = list(rules.pieces(text, rules.ImportKind.GS1, size))
    assert "\n".join(piece for _, piece in parts) == text
    offset = 0
    for first_line, piece in parts:
        assert first_line == text.count("\n", 0, offset) + 1
        offset += len(piece) + 1


@dataclass(frozen=True)
class ExportUnit:
    gtin: str
    serial: str
    lot: str | None
    expiry: date | None


async def test_epcis_document_import(client: httpx.AsyncClient, world: World) -> None:
    gtin = world.product_a["gtin"]
    units = [ExportUnit(gtin, f"E{i}", "LOTE", date(2027, 5, 31)) for i in range(5)]
    document = epcis.commissioning_document(
        units, event_time=datetime(2026, 11, 1, tzinfo=UTC), brand_name="Acme",
        company_prefix_length=7,
    )  # fmt: skip
    batch = await post_import(client, world, json.dumps(document), "application/ld+json")
    assert batch["report"]["accepted"] == 5
    assert sorted(await units_of(client, world, batch)) == sorted(
        f"(01){gtin}(21)E{i}" for i in range(5)
    )


async def test_wrong_media_type_and_empty_file(client: httpx.AsyncClient, world: World) -> None:
    for media, content in (("image/png", "x"), ("text/csv", "  \n")):
        r = await client.post(
            f"/v1/products/{world.product_a['id']}/serial-imports",
            content=content.encode(),
            headers={**bearer(world.brand_a), "content-type": media},
        )
        assert r.status_code == 422
        assert r.json()["type"] == "/problems/invalid-input"


async def test_imported_units_parse_as_gs1(client: httpx.AsyncClient, world: World) -> None:
    batch = await post_import(client, world, "Z9\n", "text/csv")
    (code,) = await units_of(client, world, batch)
    parsed = gs1.parse_gs1(code)
    assert (parsed.gtin, parsed.serial) == (world.product_a["gtin"], "Z9")


async def test_digital_link_urls_of_an_imported_serial_parse_back_to_it(
    client: httpx.AsyncClient, world: World
) -> None:
    serial = "AB/12?x%"  # GS1 allows it; a URI must percent-encode all but the digits
    batch = await post_import(client, world, f"{serial}\n", "text/csv")
    assert batch["report"]["accepted"] == 1
    r = await client.get(batch["files"]["codes.csv"], headers=bearer(world.brand_a))
    urls = [row["url"] for row in csv.DictReader(io.StringIO(r.text))]
    r = await client.get(batch["files"]["codes.jsonl"], headers=bearer(world.brand_a))
    urls += [json.loads(line)["url"] for line in r.text.splitlines()]
    assert len(urls) == 2
    for url in urls:
        parsed = codes.parse(url)
        assert (parsed.gtin, parsed.serial) == (world.product_a["gtin"], serial), url
