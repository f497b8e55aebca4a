"""A finished batch's codes as files: CSV, JSON lines, label sheets (PDF), label images (ZIP).

Every file is streamed from a server-side cursor; nothing holds a whole batch in memory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from transparency.db import brands
from transparency.db import units as db_units
from transparency.domain import codes, epcis, gs1
from transparency.domain.batches import Batch
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import Conflict, InvalidInput
from transparency.domain.identity import Principal
from transparency.runtime.keyring import KeyRing
from transparency.services.batches import finished_batch

if TYPE_CHECKING:  # the renderer (numpy, Pillow, zxing-cpp) loads with the first label file
    from transparency.labels.render import Label, SheetLayout

_EPCIS_EVENT_SIZE = 10_000
FIELDS = ("code", "symbol", "human_readable", "url", "lot", "expiry")


@dataclass(frozen=True, slots=True)
class ExportRow:
    code: str  # the unit key
    symbol: str  # what the printed symbol encodes
    human_readable: str  # what is printed under it
    url: str  # where a phone camera should land
    lot: str | None
    expiry: str | None


class Exporter:
    """Turns a batch's unit keys into what is printed, per format."""

    def __init__(self, batch: Batch, keyring: KeyRing, public_url: str) -> None:
        self.batch = batch
        self.public_url = public_url
        self.key = keyring.get(batch.key_id) if batch.key_id is not None else None

    def row(self, code: str, lot: str | None, expiry: date | None) -> ExportRow:
        exp = expiry.isoformat() if expiry else None
        if self.batch.format is CodeFormat.GS1:
            parsed = codes.parse(code)
            assert parsed.gtin is not None
            assert parsed.serial is not None
            url = gs1.digital_link(
                (("01", parsed.gtin), ("21", parsed.serial)), base=self.public_url
            )
            return ExportRow(code, code, code, url, lot, exp)
        url = f"{self.public_url}/t/{code}"
        if self.batch.format is CodeFormat.OFFLINE:
            assert self.key is not None
            payload = codes.parse(code).payload
            assert payload is not None
            offline = codes.sign_offline(payload, self.key.private_key)
            return ExportRow(code, offline, code, url, lot, exp)
        return ExportRow(code, url, code, url, lot, exp)


async def rows(
    pool: asyncpg.Pool, batch: Batch, keyring: KeyRing, public_url: str
) -> AsyncIterator[ExportRow]:
    exporter = Exporter(batch, keyring, public_url)
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for code, lot, expiry in db_units.of_batch(conn, batch.id):
            yield exporter.row(code, lot, expiry)


async def csv_stream(source: AsyncIterator[ExportRow]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    count = 0
    async for row in source:
        writer.writerow(asdict(row).values())
        count += 1
        if count % 5000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def jsonl_stream(source: AsyncIterator[ExportRow]) -> AsyncIterator[bytes]:
    lines: list[str] = []
    async for row in source:
        lines.append(json.dumps(asdict(row)))
        if len(lines) == 5000:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    if lines:
        yield ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True, slots=True)
class _Sgtin:
    gtin: str
    serial: str
    lot: str | None
    expiry: date | None


async def epcis_file(
    pool: asyncpg.Pool,
    actor: Principal,
    batch_id: UUID,
    *,
    company_prefix_length: int | None,
    now: datetime,
) -> AsyncIterator[bytes]:
    """A finished GS1 batch as one EPCIS 2.0 document of commissioning events, streamed.

    Events hold at most ``_EPCIS_EVENT_SIZE`` EPCs each, so the document is written event by
    event from the cursor and never held whole.
    """
    batch = await finished_batch(pool, actor, batch_id)
    if batch.format is not CodeFormat.GS1:
        raise Conflict("EPCIS commissioning events need GS1 codes (GTIN + serial)")
    brand = await brands.get(pool, batch.brand_id)
    assert brand is not None
    moment = batch.finished_at or now

    def document(units: list[_Sgtin]) -> dict[str, Any]:
        return epcis.commissioning_document(
            units,
            event_time=moment,
            creation_date=now,
            brand_name=brand.name,
            company_prefix_length=company_prefix_length,
        )

    gtin = codes.parse((await _first_code(pool, batch_id)) or "").gtin
    try:
        document([_Sgtin(gtin or "", "0", None, None)] if gtin else [])
    except ValueError as exc:
        raise InvalidInput(str(exc), field="company_prefix_length") from None
    envelope = json.dumps(document([]))
    head, tail = envelope[: -len("[]}}")] + "[", "]}}"

    async def stream() -> AsyncIterator[bytes]:
        yield head.encode()
        first = True
        units: list[_Sgtin] = []

        def flush() -> bytes:
            nonlocal first
            events = document(units)["epcisBody"]["eventList"]
            text = ("" if first else ",") + ",".join(json.dumps(e) for e in events)
            first = False
            units.clear()
            return text.encode()

        async with pool.acquire() as conn, conn.transaction(readonly=True):
            async for code, lot, expiry in db_units.of_batch(conn, batch_id):
                parsed = codes.parse(code)
                units.append(_Sgtin(parsed.gtin or "", parsed.serial or "", lot, expiry))
                if len(units) == _EPCIS_EVENT_SIZE:
                    yield flush()
        if units:
            yield flush()
        yield tail.encode()

    return stream()


async def _first_code(pool: asyncpg.Pool, batch_id: UUID) -> str | None:
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for code, _, _ in db_units.of_batch(conn, batch_id, prefetch=1):
            return code
    return None


def _label(batch: Batch, row: ExportRow) -> Label:
    from transparency.labels.render import Label, Symbology

    symbology = Symbology.GS1_DATAMATRIX if batch.format is CodeFormat.GS1 else Symbology.QR
    return Label(symbol_text=row.symbol, human_text=row.human_readable, symbology=symbology)


class _QueueWriter(io.RawIOBase):
    """A file object for a writer thread that hands each write to the event loop's queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None],
                 cancelled: threading.Event) -> None:  # fmt: skip
        self._loop, self._queue, self._cancelled = loop, queue, cancelled

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._cancelled.is_set():
            raise ConnectionAbortedError("the download was abandoned")
        chunk = bytes(data)
        asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()
        return len(chunk)


async def labels_file(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    actor: Principal,
    batch_id: UUID,
    public_url: str,
    kind: str,
    layout: SheetLayout,
) -> AsyncIterator[bytes]:
    """A finished batch's labels: one PDF sheet, or a ZIP of PNG or SVG images.

    The renderer is synchronous; it runs in a thread, pulling rows from the cursor a chunk
    at a time through the event loop and pushing bytes back through a bounded queue, so
    neither the rows nor the file are ever held whole.
    """
    batch = await finished_batch(pool, actor, batch_id)
    exporter = Exporter(batch, keyring, public_url)
    loop = asyncio.get_running_loop()

    async def stream() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
        cancelled = threading.Event()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await db_units.batch_cursor(conn, batch.id)

            def labels() -> Iterator[Label]:
                while True:
                    fetch = db_units.next_rows(cursor, 500)
                    rows = asyncio.run_coroutine_threadsafe(fetch, loop).result()
                    if not rows:
                        return
                    for code, lot, expiry in rows:
                        yield _label(batch, exporter.row(code, lot, expiry))

            def render() -> None:
                from transparency.labels.render import write_pdf, write_zip

                out = io.BufferedWriter(_QueueWriter(loop, queue, cancelled), buffer_size=1 << 16)
                try:
                    if kind == "pdf":
                        write_pdf(labels(), out, layout)
                    else:
                        write_zip(labels(), out, kind="svg" if kind == "svg.zip" else "png")
                    out.flush()
                finally:
                    if not cancelled.is_set():
                        asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

            work = loop.run_in_executor(None, render)
            try:
                while (chunk := await queue.get()) is not None:
                    yield chunk
                await work
            finally:
                cancelled.set()
                while not queue.empty():  # unblock a writer waiting for room
                    queue.get_nowait()
                with suppress(Exception):
                    await work

    return stream()


async def batch_file(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    actor: Principal,
    batch_id: UUID,
    public_url: str,
    kind: str,
) -> AsyncIterator[bytes]:
    """Check the caller may download the finished batch, then return its file's stream."""
    batch = await finished_batch(pool, actor, batch_id)
    source = rows(pool, batch, keyring, public_url)
    return csv_stream(source) if kind == "csv" else jsonl_stream(source)
