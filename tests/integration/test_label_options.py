"""The label download's options through the API: every preset's page size and labels per
page, the brand's lines, the call to action's language, ZIP entry names, and a problem
(never a file) for every option the API cannot honour."""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from typing import Any

import httpx
import numpy as np
import pypdfium2
import pytest

import scanner
from tests.support.world import World, bearer, issue_batch
from transparency.domain import gs1
from transparency.domain.codes import parse
from transparency.domain.digital_link import parse_digital_link
from transparency.labels.content import CALL_TO_ACTION, Language
from transparency.labels.sheets import PAGE_MM, Preset, layout_of
from transparency.runtime.settings import Settings

PT_PER_MM = 72 / 25.4
# One more than the largest grid (Letter 5160: 30 a sheet), so every preset fills its
# first page and starts another.
COUNT = 31


async def issued(client: httpx.AsyncClient, world: World, count: int, **extra: Any) -> str:
    """A finished batch of product A: its id."""
    return str((await issue_batch(client, world, count, **extra))["id"])


async def codes_of(client: httpx.AsyncClient, world: World, batch: str) -> list[str]:
    r = await client.get(f"/v1/code-batches/{batch}/codes.csv", headers=bearer(world.brand_a))
    return [row["code"] for row in csv.DictReader(io.StringIO(r.text))]


async def labels(
    client: httpx.AsyncClient, world: World, batch: str, kind: str = "pdf", **params: Any
) -> httpx.Response:
    return await client.get(
        f"/v1/code-batches/{batch}/labels.{kind}", params=params, headers=bearer(world.brand_a)
    )


def pdf_of(r: httpx.Response) -> pypdfium2.PdfDocument:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return pypdfium2.PdfDocument(r.content)


def page_text(document: pypdfium2.PdfDocument, index: int) -> str:
    """A page's text without its white space: a code or a call to action broken over
    lines reads as one word."""
    text: str = document[index].get_textpage().get_text_range()
    return re.sub(r"\s+", "", text)


def assert_refused(r: httpx.Response, field: str) -> None:
    """A 422 invalid-input problem naming ``field``, and no file."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "content-disposition" not in r.headers
    body = r.json()
    assert body["type"] == "/problems/invalid-input", body
    assert field in [error["field"] for error in body["errors"]], body


async def test_each_preset_gives_its_page_size_and_labels_per_page(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issued(client, world, COUNT)
    codes = await codes_of(client, world, batch)
    assert len(codes) == COUNT
    for preset in Preset:
        layout = layout_of(preset)
        document = pdf_of(await labels(client, world, batch, preset=preset.value))
        assert len(document) == math.ceil(COUNT / layout.per_page), preset
        width, height = document[0].get_size()
        assert (round(width / PT_PER_MM, 1), round(height / PT_PER_MM, 1)) == (
            round(layout.page_mm[0], 1),
            round(layout.page_mm[1], 1),
        ), preset
        if layout.page != "roll":
            assert layout.page_mm == PAGE_MM[layout.page]
        printed: list[str] = []
        for index in range(len(document)):
            text = page_text(document, index)
            on_page = [code for code in codes if code in text]
            assert len(on_page) == min(layout.per_page, COUNT - len(printed)), (preset, index)
            assert text.count("Scantoverify") == len(on_page), (preset, index)
            printed += on_page
        assert sorted(printed) == sorted(codes), preset


async def test_chosen_lines_are_printed_on_pdf_and_svg_labels(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issued(client, world, 2, lot="L42", expiry="2027-06-30")
    me = (await client.get("/v1/me", headers=bearer(world.brand_a))).json()
    brand = me["brand"]["name"]
    wanted = [brand, world.product_a["name"], "LOT L42", "EXP 2027-06-30"]
    lines: dict[str, Any] = {"line": ["brand", "product", "lot", "expiry"]}

    plain = page_text(pdf_of(await labels(client, world, batch, preset="a4-l7163")), 0)
    assert not [text for text in wanted if text.replace(" ", "") in plain]

    document = pdf_of(await labels(client, world, batch, preset="a4-l7163", **lines))
    text = page_text(document, 0)
    for line in wanted:
        assert text.count(line.replace(" ", "")) == 2, (line, text)

    r = await labels(client, world, batch, "zip", preset="a4-l7163", images="svg", **lines)
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        for name in archive.namelist():
            svg = archive.read(name).decode()
            texts = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
            assert set(wanted) <= set(texts), (name, texts)


async def test_language_fr_prints_the_french_call_to_action(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issued(client, world, 3)
    text = page_text(pdf_of(await labels(client, world, batch, language="fr")), 0)
    french = CALL_TO_ACTION[Language.FR].replace(" ", "")
    assert text.count(french) == 3, text
    assert CALL_TO_ACTION[Language.EN].replace(" ", "") not in text

    r = await labels(client, world, batch, "zip", images="svg", language="fr")
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        svg = archive.read(archive.namelist()[0]).decode()
    assert "Scannez" in svg
    assert "Scan to" not in svg


@pytest.mark.parametrize("images", ["png", "svg"])
async def test_zip_entries_are_named_after_each_code(
    client: httpx.AsyncClient, world: World, images: str
) -> None:
    batch = await issued(client, world, 4)
    codes = await codes_of(client, world, batch)
    r = await labels(client, world, batch, "zip", images=images, preset="roll-50x25")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert sorted(archive.namelist()) == sorted(f"{code}.{images}" for code in codes)


async def test_a_custom_size_keeps_the_presets_page_unless_page_is_given(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issued(client, world, 2)
    # 250 x 100 mm is no label for an A4 sheet (the default preset's page) ...
    r = await labels(client, world, batch, label_width_mm=250, label_height_mm=100)
    assert_refused(r, "layout")
    # ... but is a roll label when the page says so.
    document = pdf_of(
        await labels(client, world, batch, page="roll", label_width_mm=250, label_height_mm=100)
    )
    assert len(document) == 2
    width, height = document[0].get_size()
    assert (round(width / PT_PER_MM), round(height / PT_PER_MM)) == (250, 100)
    # A smaller size on the preset's A4 page: the grid is derived anew.
    document = pdf_of(await labels(client, world, batch, label_width_mm=40, label_height_mm=30))
    assert [round(side / PT_PER_MM) for side in document[0].get_size()] == [210, 297]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"preset": "a4-l9999"}, "query.preset"),
        ({"line": ["brand", "colour"]}, "query.line.1"),
        ({"language": "xx"}, "query.language"),
        ({"images": "gif"}, "query.images"),
        ({"page": "A3"}, "query.page"),
        ({"label_width_mm": 10}, "query.label_width_mm"),
        ({"columns": -1}, "query.columns"),
        # A label too small for its code: the renderer finds it before anything is sent.
        ({"page": "roll", "label_width_mm": 15, "label_height_mm": 15}, "layout"),
        # Columns and rows the page cannot hold.
        ({"columns": 4}, "layout"),
        ({"rows": 9}, "layout"),
        ({"preset": "letter-5163", "columns": 3, "rows": 6}, "layout"),
        # A roll has one label a page.
        ({"preset": "roll-40x30", "columns": 2}, "layout"),
        ({"preset": "roll-40x30", "cut_marks": "true"}, "layout"),
    ],
)
@pytest.mark.parametrize("kind", ["pdf", "zip"])
async def test_an_option_the_api_cannot_honour_is_a_problem_and_no_file(
    client: httpx.AsyncClient, world: World, params: dict[str, Any], field: str, kind: str
) -> None:
    batch = await issued(client, world, 1)
    assert_refused(await labels(client, world, batch, kind, **params), field)


async def test_an_unknown_label_file_is_not_found(client: httpx.AsyncClient, world: World) -> None:
    batch = await issued(client, world, 1)
    r = await labels(client, world, batch, "txt")
    assert r.status_code == 404
    assert r.json()["type"] == "/problems/not-found"


# --- GS1 symbols -------------------------------------------------------------------------------


def symbols_read(document: pypdfium2.PdfDocument) -> list[tuple[str, str, str | None]]:
    """(text, symbology, symbology identifier) of every symbol on the first page at 300 dpi."""
    image = np.asarray(document[0].render(scale=300 / 72).to_pil().convert("L"))
    return sorted(
        (r.text, r.symbology.value, r.symbology_identifier) for r in scanner.decode(image)
    )


async def gs1_batch(client: httpx.AsyncClient, world: World, count: int) -> tuple[str, list[str]]:
    """A finished GS1 batch: its id and its units' codes (bracketed)."""
    batch = await issued(client, world, count, format="gs1")
    return batch, await codes_of(client, world, batch)


def link_of(code: str, base: str) -> str:
    parsed = parse(code)
    return f"{base}/01/{parsed.gtin}/21/{parsed.serial}"


async def test_gs1_labels_print_a_digital_link_qr_the_service_resolves(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    batch, codes = await gs1_batch(client, world, 3)
    read = symbols_read(pdf_of(await labels(client, world, batch, preset="a4-l7163")))
    public_url = settings.public_url
    assert read == sorted((link_of(code, public_url), "QRCode", "]Q1") for code in codes)
    for text, _, _ in read:
        link = parse_digital_link(text, strict=True)  # as the standard writes it
        assert gs1.bracketed(link.ais()) in codes
        # The service answers the URI's path (its resolver).
        r = await client.get(text.removeprefix(public_url))
        assert r.status_code in (200, 303, 307), (text, r.status_code)


async def test_gs1_labels_print_the_element_string_datamatrix_on_request(
    client: httpx.AsyncClient, world: World
) -> None:
    batch, codes = await gs1_batch(client, world, 3)
    r = await labels(client, world, batch, preset="a4-l7163", symbol="datamatrix")
    read = symbols_read(pdf_of(r))
    assert [(symbology, identifier) for _, symbology, identifier in read] == [
        ("DataMatrix", "]d2")
    ] * 3
    assert sorted(parse(text).text for text, _, _ in read) == sorted(codes)


async def test_a_brands_resolver_domain_names_its_labels_and_codes_file(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    r = await client.patch(
        "/v1/brand/profile",
        json={"resolver_domain": "HTTPS://ID.Brand.Example/"},
        headers=bearer(world.brand_a),
    )
    assert r.status_code == 200, r.text
    assert r.json()["resolver_domain"] == "https://id.brand.example"
    batch, codes = await gs1_batch(client, world, 2)
    read = symbols_read(pdf_of(await labels(client, world, batch, preset="a4-l7163")))
    assert [text for text, _, _ in read] == sorted(
        link_of(code, "https://id.brand.example") for code in codes
    )
    r = await client.get(f"/v1/code-batches/{batch}/codes.csv", headers=bearer(world.brand_a))
    urls = [row["url"] for row in csv.DictReader(io.StringIO(r.text))]
    assert sorted(urls) == [text for text, _, _ in read]
    # Cleared, the labels go back to the service's own URL.
    r = await client.patch(
        "/v1/brand/profile", json={"resolver_domain": None}, headers=bearer(world.brand_a)
    )
    assert r.json()["resolver_domain"] is None
    read = symbols_read(pdf_of(await labels(client, world, batch, preset="a4-l7163")))
    assert all(text.startswith(settings.public_url + "/01/") for text, _, _ in read)


@pytest.mark.parametrize(
    "origin",
    ["http://id.brand.example", "https://id.brand.example/path", "https://", "id.brand.example",
     "https://id.brand.example?x=1", "https://user@id.brand.example"],
)  # fmt: skip
async def test_a_resolver_domain_is_an_https_origin(
    client: httpx.AsyncClient, world: World, origin: str
) -> None:
    r = await client.patch(
        "/v1/brand/profile", json={"resolver_domain": origin}, headers=bearer(world.brand_a)
    )
    assert_refused(r, "resolver_domain")
    profile = (await client.get("/v1/brand/profile", headers=bearer(world.brand_a))).json()
    assert profile["resolver_domain"] is None


async def test_a_datamatrix_is_for_gs1_batches_only(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await issued(client, world, 1)
    assert_refused(await labels(client, world, batch, symbol="datamatrix"), "symbol")
    assert_refused(await labels(client, world, batch, symbol="aztec"), "query.symbol")
