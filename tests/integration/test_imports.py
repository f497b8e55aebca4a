"""Brand-native serial imports: every row checked, a report, idempotent re-posts."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import os
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import paths
from tests.support.asgi import make_client
from tests.support.world import World, bearer, build_world
from transparency.api.app import create_app
from transparency.db import imports as db_imports
from transparency.db import units
from transparency.domain import codes, epcis, gs1
from transparency.domain import imports as rules
from transparency.domain.errors import InvalidInput
from transparency.runtime.settings import Settings
from transparency.runtime.workers import bulk_cpus
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


async def test_the_same_file_in_another_mode_is_a_new_import(
    client: httpx.AsyncClient, world: World
) -> None:
    refused = await post_import(client, world, MALFORMED_CSV, "text/csv")
    assert refused["report"]["registered"] is False
    valid = await post_import(client, world, MALFORMED_CSV, "text/csv", mode="accept_valid")
    assert valid["id"] != refused["id"]
    assert (valid["report"]["mode"], valid["report"]["accepted"]) == ("accept_valid", 2)
    again = await post_import(client, world, MALFORMED_CSV, "text/csv", "accept_valid", 200)
    assert again["id"] == valid["id"]  # the same file in the same mode is still the same


@pytest.mark.parametrize("mode", ["all_or_nothing", "accept_valid"])
async def test_a_report_counts_every_row_of_the_file(
    client: httpx.AsyncClient, world: World, mode: str
) -> None:
    report = (await post_import(client, world, MALFORMED_CSV, "text/csv", mode))["report"]
    assert report["rows"] == len(MALFORMED_CSV.splitlines()) - 1  # all but the header: 6
    assert report["rejected"] == 4


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


@given(
    st.text(st.sampled_from("ab\n"), max_size=300),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=8),
    st.lists(st.integers(min_value=0, max_value=300), max_size=6),
)
def test_text_fed_in_parts_is_cut_into_pieces_of_bounded_lines(
    text: str, size: int, max_lines: int, cuts: list[int]
) -> None:
    cutter = rules.LinePieces(size, max_lines)
    parts: list[tuple[int, str]] = []
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    for start, end in itertools.pairwise(bounds):
        parts += cutter.feed(text[start:end])
    parts += cutter.end()
    assert "\n".join(piece for _, piece in parts) == text
    assert all(piece.count("\n") < max_lines for _, piece in parts)
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


async def test_the_brands_job_cap_is_checked_before_a_byte_of_the_file_is_read(
    client: httpx.AsyncClient, world: World, dsn: str, settings: Settings
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(settings.max_jobs_per_brand):  # running elsewhere, leases held
            await conn.execute(
                "insert into code_batches (id, brand_id, product_id, kind, format, requested,"
                " status, lease_until, lease_token) values ($1, $2, $3, 'issue', 'gs1', 1,"
                " 'running', now() + interval '1 hour', gen_random_uuid())",
                uuid.uuid4(), uuid.UUID(world.brand_a_id), uuid.UUID(world.product_a["id"]),
            )  # fmt: skip
    finally:
        await conn.close()
    read: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        for n in range(100):
            read.append(b"x")
            yield f"S{n}\n".encode()

    r = await client.post(
        f"/v1/products/{world.product_a['id']}/serial-imports",
        content=body(),
        headers={**bearer(world.brand_a), "content-type": "text/csv"},
    )
    assert r.status_code == 429, r.text
    assert r.json()["type"] == "/problems/limit-exceeded"
    assert read == []  # refused before the upload was read


async def test_rows_are_counted_as_they_are_read_and_the_limit_refuses_the_file(
    settings: Settings, admin_key: str
) -> None:
    limited = settings.model_copy(update={"max_import_rows": 1000})
    app = create_app(limited)
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        async with make_client(app) as client:
            world = await build_world(client, admin_key)
            batch = await post_import(client, world, "A\n" * 200_000, "text/csv", "accept_valid")
            assert batch["status"] == "failed"
            assert batch["error"] == "an import holds at most 1000 rows"
            assert await units_of(client, world, batch) == []
            assert await rejections(client, world, batch) == []
            exact = await post_import(client, world, "B\n" * 1000, "text/csv", "accept_valid")
            assert (exact["status"], exact["report"]["rejected"]) == ("done", 999)


def test_a_piece_is_refused_as_soon_as_it_passes_the_row_limit() -> None:
    """Counted while reading: the rows past the limit are never held (a file of five million
    repeats once grew the reading process to 2.6 GB before the count was checked)."""
    text = "A\n" * 500_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="at most 1000 rows"):
            rules.read(text, rules.ImportKind.CSV, "09506000134352", max_rows=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # csv reads a copy of the text (4 bytes a character: 4 MB); 500,000 refusals were 100 MB.
    assert peak < 10_000_000


async def test_every_refused_row_reaches_the_report_while_the_job_holds_a_hundred(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "_PIECE", 1000)  # many pieces: rejections written in chunks
    held: list[int] = []
    close = service._close

    async def spy(*args: Any) -> None:
        held.append(len(args[-1]))  # the refused rows the job kept in memory
        await close(*args)

    monkeypatch.setattr(service, "_close", spy)
    content = "serial\n" + "".join(f"D{n % 700}\n" for n in range(3000))
    batch = await post_import(client, world, content, "text/csv", mode="accept_valid")
    report = batch["report"]
    assert (report["accepted"], report["rejected"], report["rows"]) == (700, 2300, 3000)
    refused = await rejections(client, world, batch)
    assert len(refused) == 2300
    assert [r["position"] for r in refused] == [f"line {n + 2}" for n in range(700, 3000)]
    assert refused[0]["detail"] == "serial already at line 2"
    assert [r["position"] for r in report["first_rejections"]] == [
        f"line {n + 2}" for n in range(700, 800)
    ]
    assert held == [100]


async def test_an_upload_is_stored_and_read_back_in_chunks(
    client: httpx.AsyncClient, world: World, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_imports, "CHUNK", 1000)  # about thirty chunks, cut mid-character
    gtin = world.product_a["gtin"]
    lines = [f"01{gtin}21C{n}" for n in range(1500)]
    lines[700] = f"01{gtin}21Crème"  # two bytes of UTF-8 across a chunk's end, somewhere
    content = "\ufeff" + "\n".join(lines) + "\n"
    batch = await post_import(client, world, content, "text/plain", mode="accept_valid")
    assert (batch["report"]["accepted"], batch["report"]["rejected"]) == (1499, 1)
    assert [r["position"] for r in await rejections(client, world, batch)] == ["line 701"]
    conn = await asyncpg.connect(dsn)
    try:  # the upload's large object is gone once the job has run
        assert await conn.fetchval("select count(*) from pg_largeobject_metadata") == 0
    finally:
        await conn.close()


async def test_a_file_of_one_serial_repeated_costs_the_database_almost_nothing(
    client: httpx.AsyncClient, world: World, dsn: str
) -> None:
    """A hostile brand can post such a file every second. Stored as it came (3.6 MB here)
    with a report of its refusals compressed a page at a time (0.7 MB more), each cost
    PostgreSQL its size again in WAL, and the disk's writeback a core's worth of kernel time
    beside the claims. Deflated, with the refusals stored as runs, it costs kilobytes."""
    content = "serial\n" + "SAME-SERIAL\n" * 300_000
    conn = await asyncpg.connect(dsn)
    try:
        start = await conn.fetchval("select pg_current_wal_lsn()")
        batch = await post_import(client, world, content, "text/csv")
        wal = await conn.fetchval("select pg_current_wal_lsn() - $1::pg_lsn", start)
    finally:
        await conn.close()
    assert batch["status"] == "done"
    assert (batch["report"]["accepted"], batch["report"]["rejected"]) == (0, 299_999)
    assert wal < 256 * 1024, f"{wal} bytes of WAL"
    refused = await rejections(client, world, batch)  # every row still named, in order
    assert [r["position"] for r in refused] == [f"line {n}" for n in range(3, 300_002)]
    # every repeat names the file's first line, in every piece (each piece's worker saw
    # only its own piece, and named that piece's first row of the serial)
    assert {r["detail"] for r in refused} == {"serial already at line 2"}


async def test_an_uploads_deflate_and_hash_run_as_bulk_work(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deflating a file of serials costs about 10 ms of CPU a megabyte: from a plain
    thread that was taken at the claims' own priority, on their core, and a 12 MB file of
    random serials posted once a second raised the claims' p99 1.8-2.5x with no job at all
    (1.7x as bulk work)."""
    seen: list[tuple[int, set[int]]] = []
    add = service._Packer.add

    def watched(self: service._Packer, pieces: list[bytes], *, last: bool = False) -> None:
        seen.append((os.sched_getscheduler(0), os.sched_getaffinity(0)))
        add(self, pieces, last=last)

    monkeypatch.setattr(service._Packer, "add", watched)
    monkeypatch.setattr(service, "_HANDOFF", 4096)  # a piece handed over before the last
    content = "serial\n" + "".join(f"S{n:09d}\n" for n in range(2000))
    batch = await post_import(client, world, content, "text/csv")
    assert batch["report"]["accepted"] == 2000
    assert len(seen) >= 2  # a piece as it came, and the last
    assert {policy for policy, _ in seen} == {os.SCHED_IDLE}
    assert all(cpus == bulk_cpus() for _, cpus in seen)


def test_runs_of_refusals_read_back_row_for_row() -> None:
    rows = [("line 2", "dup", "x"), ("line 3", "dup", "x"), ("line 4", "dup", "x"),
            ("line 5", "other", "x"), ("line 7", "dup", "x"), ("line 8", "dup", "y"),
            ("#/epcisBody/eventList/0", "bad", "z"), ("line 09", "dup", "x"),
            ("line 10", "dup", "x"), ("line 11", "dup", "x")]  # fmt: skip
    stored = list(db_imports._runs(rows))
    assert stored[0] == ["line 2", "dup", "x", 3]
    assert len(stored) == 7
    assert db_imports._expanded(json.loads(json.dumps(stored))) == rows


async def test_a_batch_finishes_when_its_job_does_not_when_its_transaction_began(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = units.copy
    copied: list[datetime] = []

    async def slow_copy(conn: Any, rows: Any) -> None:
        await copy(conn, rows)
        await asyncio.sleep(0.3)  # a long import, in small
        copied.append(datetime.now(UTC))

    monkeypatch.setattr(units, "copy", slow_copy)
    batch = await post_import(client, world, "F1\nF2\n", "text/csv")
    assert batch["status"] == "done"
    assert datetime.fromisoformat(batch["finished_at"]) >= copied[-1]


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ('{"a": ' * 200_000 + "1" + "}" * 200_000, "line 1 column 385: nested deeper"),
        ('{"type": "EPCISDocument", "n": ' + "7" * 100_000 + "}", "line 1 column 32: a number"),
        ('{"type": "EPCISDocument",\n "type": "x"}', 'line 2 column 2: the key "type"'),
        ('{"type": "EPCISDocument", "x": NaN}', "line 1 column 32: NaN"),
        ('{"type": "EPCISDocument", "x": [1,]}', "line 1 column 35: Expecting value"),
    ],
)
async def test_a_hostile_epcis_document_fails_its_import_with_the_place(
    client: httpx.AsyncClient, world: World, document: str, error: str
) -> None:
    batch = await post_import(client, world, document, "application/ld+json")
    assert batch["status"] == "failed"
    assert batch["error"].startswith(error), batch["error"]
