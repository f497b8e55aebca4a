"""A finished batch's codes as files: CSV, JSON lines, EPCIS, label sheets (PDF), label
images (ZIP); and an import's rejections (CSV).

No download holds a database connection while it waits for its client. The rows are read
at the database's pace, in one read-only transaction on one of the pool's bulk slots
(``pool.bulk_read``), into a temporary file (a ``Spool``); the response is made from that
file at the client's pace. A client that stops reading keeps a file on disk, never a
connection or a transaction (eight such clients once held every pooled connection, and
every warehouse's claims waited). Nothing holds a whole batch in memory: a spool is read
back a frame of rows at a time.

Labels are drawn in a process of their own per download (``transparency.labels.worker``),
at most ``label_renders`` at once per API process, so rendering never runs on the event
loop nor holds this process's GIL.

CSV cells that a spreadsheet would run as a formula are neutralised (``spreadsheet_safe``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db import brands
from transparency.db import imports as db_imports
from transparency.db import products as db_products
from transparency.db import units as db_units
from transparency.db.pool import Conn
from transparency.domain import codes, epcis, epcis_xml, gs1
from transparency.domain.batches import Batch
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import Conflict, InvalidInput, RenderersBusy
from transparency.domain.identity import Principal
from transparency.labels import BAD_LABEL, PIECE
from transparency.labels.content import (
    CALL_TO_ACTION,
    Gs1Symbol,
    LabelLine,
    Language,
    chosen_lines,
)
from transparency.labels.sheets import SheetLayout
from transparency.runtime.keyring import KeyRing
from transparency.runtime.workers import bulk_cpus
from transparency.services.batches import finished_batch, get_batch
from transparency.services.spool import STALL_SECONDS, Spool

log = logging.getLogger("transparency.services.exports")

_EPCIS_EVENT_SIZE = 10_000
# Rows a spool frame holds: about 200 KB of CSV, so a client that takes a frame's file
# in STALL_SECONDS reads at 4 KB/s or more.
_FRAME_ROWS = 1_000
# Rows formatted between two turns of the event loop: signing an offline code or building
# a Digital Link costs 20-40 us, so a slice holds the loop a millisecond at most (at 200,
# eight downloads raised the claims' p99 3.5x, each slice a few milliseconds of a claim's
# wait).
_SLICE_ROWS = 50
FIELDS = ("code", "symbol", "human_readable", "url", "lot", "expiry")


# --- CSV cells -------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str | None) -> str | None:
    """``cell`` as a spreadsheet will show it, never run it (OWASP, CSV injection).

    Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or
    ``@`` as a formula (``=HYPERLINK(...)``, ``=cmd|...``), and tab or CR can hide that
    start; a leading ``'`` makes any of them text, and the spreadsheet does not show it.
    Our codes never start so; imported serials, lots and rejected rows' text may.
    """
    if cell and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def _csv_writer() -> tuple[io.StringIO, Any]:
    buffer = io.StringIO()
    # CRLF, as RFC 4180 says: Python's writer quotes a cell holding a CR only when the
    # line ends in one, and an unquoted CR splits the row for every reader.
    return buffer, csv.writer(buffer, lineterminator="\r\n")


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


# --- Spooled reads ---------------------------------------------------------------------------


async def _spooled(
    pool: asyncpg.Pool, read: Callable[[Conn], AsyncIterator[list[Any]]]
) -> AsyncGenerator[list[Any], None]:
    spool = Spool()
    await spool.start(pool, read)
    return spool.frames()


def _units_of(batch_id: UUID) -> Callable[[Conn], AsyncIterator[list[Any]]]:
    return lambda conn: db_units.of_batch(conn, batch_id, size=_FRAME_ROWS)


async def _slices(frames: AsyncIterator[list[Any]]) -> AsyncGenerator[list[Any], None]:
    """The frames' rows ``_SLICE_ROWS`` at a time, letting other requests run between."""
    async for rows in frames:
        for start in range(0, len(rows), _SLICE_ROWS):
            yield rows[start : start + _SLICE_ROWS]
            await asyncio.sleep(0)  # a turn of the loop: claims wait for no export


# --- Codes: CSV and JSON lines ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportRow:
    code: str  # the unit key
    symbol: str  # what the printed symbol encodes
    human_readable: str  # what is printed under it
    url: str  # where a phone camera should land
    lot: str | None
    expiry: str | None

    def cells(self) -> tuple[str, str, str, str, str | None, str | None]:
        """The row's cells in FIELDS order (dataclasses.astuple deep-copies each: 5x the
        cost of the row's own formatting)."""
        return (self.code, self.symbol, self.human_readable, self.url, self.lot, self.expiry)


class Exporter:
    """Turns a batch's unit keys into what is printed, per format.

    A GS1 unit's URL is its GS1 Digital Link URI on ``resolver_url`` (the brand's resolver
    domain, when it set one), else on the service's ``public_url``.
    """

    def __init__(
        self, batch: Batch, keyring: KeyRing, public_url: str, resolver_url: str | None = None
    ) -> None:
        self.batch = batch
        self.public_url = public_url
        self.resolver_url = resolver_url or public_url
        self.key = keyring.get(batch.key_id) if batch.key_id is not None else None

    def row(self, code: str, lot: str | None, expiry: date | None) -> ExportRow:
        exp = expiry.isoformat() if expiry else None
        if self.batch.format is CodeFormat.GS1:
            parsed = codes.parse(code)
            assert parsed.gtin is not None
            assert parsed.serial is not None
            url = gs1.digital_link(
                (("01", parsed.gtin), ("21", parsed.serial)), base=self.resolver_url
            )
            return ExportRow(code, code, codes.grouped(code), url, lot, exp)
        url = f"{self.public_url}/t/{code}"
        if self.batch.format is CodeFormat.OFFLINE:
            assert self.key is not None
            payload = codes.parse(code).payload
            assert payload is not None
            offline = codes.sign_offline(payload, self.key.private_key)
            return ExportRow(code, offline, codes.grouped(code), url, lot, exp)
        return ExportRow(code, url, codes.grouped(code), url, lot, exp)


async def csv_stream(
    frames: AsyncIterator[list[db_units.BatchUnit]], exporter: Exporter
) -> AsyncIterator[bytes]:
    buffer, writer = _csv_writer()
    writer.writerow(FIELDS)
    async for rows in _slices(frames):
        for row in rows:
            writer.writerow([spreadsheet_safe(cell) for cell in exporter.row(*row).cells()])
        yield _drain(buffer)
    yield _drain(buffer)


async def jsonl_stream(
    frames: AsyncIterator[list[db_units.BatchUnit]], exporter: Exporter
) -> AsyncIterator[bytes]:
    async for rows in _slices(frames):
        lines = (
            json.dumps(dict(zip(FIELDS, exporter.row(*row).cells(), strict=True))) for row in rows
        )
        yield ("\n".join(lines) + "\n").encode()


async def batch_file(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    actor: Principal,
    batch_id: UUID,
    public_url: str,
    kind: str,
) -> AsyncIterator[bytes]:
    """Check the caller may download the finished batch, start reading it, and return its
    file's stream."""
    batch = await finished_batch(pool, actor, batch_id)
    exporter = Exporter(
        batch, keyring, public_url, await brands.resolver_domain(pool, batch.brand_id)
    )
    frames = await _spooled(pool, _units_of(batch.id))
    return csv_stream(frames, exporter) if kind == "csv" else jsonl_stream(frames, exporter)


# --- EPCIS -----------------------------------------------------------------------------------


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
    xml: bool = False,
) -> AsyncIterator[bytes]:
    """A finished GS1 batch as one EPCIS 2.0 document of commissioning events, streamed:
    JSON-LD, or with ``xml`` EPCIS 2.0 XML (the same document, written by ``epcis_xml``).

    Events hold at most ``_EPCIS_EVENT_SIZE`` EPCs each, so the document is written event by
    event and never held whole.
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

    async with pool.acquire() as conn:
        first = await db_units.first_of_batch(conn, batch_id)
    gtin = codes.parse(first).gtin if first else None  # an import may register none
    try:
        document([_Sgtin(gtin or "", "0", None, None)] if gtin else [])
    except ValueError as exc:
        raise InvalidInput(str(exc), field="company_prefix_length") from None
    if xml:
        head, _, tail = epcis_xml.xml_parts(document([]))
    else:
        envelope = json.dumps(document([]))
        head, tail = (envelope[: -len("[]}}")] + "[").encode(), b"]}}"
    frames = await _spooled(pool, _units_of(batch_id))

    async def stream() -> AsyncIterator[bytes]:
        yield head
        first = True
        units: list[_Sgtin] = []

        def flush() -> bytes:
            nonlocal first
            if xml:
                data = epcis_xml.events_to_xml(document(units))
            else:
                events = document(units)["epcisBody"]["eventList"]
                data = (("" if first else ",") + ",".join(json.dumps(e) for e in events)).encode()
            first = False
            units.clear()
            return data

        async for rows in _slices(frames):
            for code, lot, expiry in rows:
                parsed = codes.parse(code)
                units.append(_Sgtin(parsed.gtin or "", parsed.serial or "", lot, expiry))
                if len(units) == _EPCIS_EVENT_SIZE:
                    yield flush()
        if units:
            yield flush()
        yield tail

    return stream()


# --- Labels ----------------------------------------------------------------------------------


class Renders:
    """The label-rendering processes one API process may run at once.

    Each is a Python process with the image libraries (about 70 MB); one whose output its
    client takes nothing of for ``stall_seconds`` is ended and its place given back.
    """

    def __init__(
        self, limit: int, *, wait_seconds: float = 5.0, stall_seconds: float = STALL_SECONDS
    ) -> None:
        self._free = asyncio.Semaphore(limit)
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.stall_seconds = stall_seconds

    async def take(self) -> Callable[[], None]:
        """A place, or RenderersBusy after ``wait_seconds``; returns its give-back, which
        may be called more than once."""
        try:
            async with asyncio.timeout(self.wait_seconds):  # not wait_for: it can leak a place
                await self._free.acquire()
        except TimeoutError as exc:
            raise RenderersBusy(
                f"all {self.limit} label renderers of this process are busy; retry shortly"
            ) from exc
        given = False

        def give_back() -> None:
            nonlocal given
            if not given:
                given = True
                self._free.release()

        return give_back


@dataclass(frozen=True, slots=True)
class LabelText:
    """What a run of labels says besides the codes: the call to action's language and the
    lines the brand chose."""

    language: Language = Language.EN
    lines: frozenset[LabelLine] = frozenset()
    gs1_symbol: Gs1Symbol = Gs1Symbol.QR


def _label_line(
    batch: Batch, row: ExportRow, lines: Callable[[ExportRow], list[str]], gs1_symbol: Gs1Symbol
) -> bytes:
    if batch.format is CodeFormat.GS1 and gs1_symbol is Gs1Symbol.DATAMATRIX:
        symbology, symbol = "gs1-datamatrix", row.symbol  # the bracketed element string
    elif batch.format is CodeFormat.GS1:
        symbology, symbol = "qr", row.url  # its GS1 Digital Link URI
    else:
        symbology, symbol = "qr", row.symbol
    label = [symbol, row.human_readable, symbology, row.code, lines(row)]
    return json.dumps(label).encode() + b"\n"


async def labels_file(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    renders: Renders,
    actor: Principal,
    batch_id: UUID,
    public_url: str,
    kind: str,
    layout: SheetLayout,
    text: LabelText = LabelText(),
) -> AsyncIterator[bytes]:
    """A finished batch's labels: one PDF sheet, or a ZIP of PNG or SVG images.

    A worker process draws them: the batch's rows are piped to its stdin and the file read
    from its stdout, a pipe's worth at a time, so a client that stops reading stops the
    worker (blocked on its write), and neither the rows nor the file are ever held whole.
    """
    batch = await finished_batch(pool, actor, batch_id)
    if text.gs1_symbol is Gs1Symbol.DATAMATRIX and batch.format is not CodeFormat.GS1:
        raise InvalidInput(
            f"symbol=datamatrix is for GS1 batches; a {batch.format.value} code prints as a QR",
            field="symbol",
        )
    exporter = Exporter(
        batch, keyring, public_url, await brands.resolver_domain(pool, batch.brand_id)
    )
    brand = await brands.get(pool, batch.brand_id) if LabelLine.BRAND in text.lines else None
    product = (
        await db_products.get_owned(pool, batch.brand_id, batch.product_id)
        if LabelLine.PRODUCT in text.lines
        else None
    )

    def printed(row: ExportRow) -> list[str]:
        return list(
            chosen_lines(
                text.lines,
                brand=brand.name if brand else None,
                product=product.name if product else None,
                lot=row.lot,
                expiry=row.expiry,
            )
        )

    give_back = await renders.take()
    try:
        frames = await _spooled(pool, _units_of(batch.id))
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "transparency.labels.worker", _cpu_list(bulk_cpus()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=PIECE,  # at most 2 pieces read ahead
        )  # fmt: skip
    except BaseException:
        give_back()
        raise

    def lines(rows: list[db_units.BatchUnit]) -> bytes:
        return b"".join(
            _label_line(batch, exporter.row(*row), printed, text.gs1_symbol) for row in rows
        )

    header = {
        "kind": kind,
        "layout": asdict(layout),
        "call_to_action": CALL_TO_ACTION[text.language],
    }
    rendered = _rendered(
        worker, frames, json.dumps(header).encode() + b"\n", lines, give_back, renders.stall_seconds
    )
    # The first piece is awaited here, before any answer starts: a label that does not fit
    # fails before the renderer writes anything, and becomes a problem response.
    try:
        first = await anext(rendered)
    except StopAsyncIteration:
        first = b""

    async def stream() -> AsyncIterator[bytes]:
        yield first
        async for chunk in rendered:
            yield chunk

    return stream()


async def _rendered(
    worker: asyncio.subprocess.Process,
    frames: AsyncGenerator[list[db_units.BatchUnit], None],
    header: bytes,
    lines: Callable[[list[db_units.BatchUnit]], bytes],
    give_back: Callable[[], None],
    stall_seconds: float,
) -> AsyncIterator[bytes]:
    assert worker.stdin is not None
    assert worker.stdout is not None
    assert worker.stderr is not None
    stdin, stdout, stderr = worker.stdin, worker.stdout, worker.stderr

    async def feed() -> None:
        sliced = _slices(frames)
        try:
            stdin.write(header)
            async for rows in sliced:
                stdin.write(lines(rows))
                await stdin.drain()  # waits while the worker waits on its client
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker ended first (stalled client, bad label): its status says why
        finally:
            with suppress(OSError):
                stdin.close()
            await sliced.aclose()
            await frames.aclose()

    def abandon() -> None:
        log.warning("label download stalled for %g s; its renderer is ended", stall_seconds)
        _end(worker)
        give_back()

    loop = asyncio.get_running_loop()
    feeding = asyncio.create_task(feed())
    try:
        while chunk := await stdout.read(PIECE):
            stall = loop.call_later(stall_seconds, abandon)
            yield chunk
            stall.cancel()
        await feeding
        status = await worker.wait()
        if status != 0:
            reason = (await stderr.read()).decode(errors="replace").strip()
            if status == BAD_LABEL:
                raise InvalidInput(reason, field="layout")
            raise RuntimeError(f"the label renderer stopped ({status}): {reason}")
    finally:
        feeding.cancel()
        with suppress(BaseException):
            await feeding
        _end(worker)
        with suppress(ProcessLookupError, ChildProcessError):
            await worker.wait()
        give_back()


def _cpu_list(cpus: set[int]) -> str:
    """The renderer's CPUs as its argument: "1,2,3" (empty: no pinning)."""
    return ",".join(map(str, sorted(cpus)))


def _end(worker: asyncio.subprocess.Process) -> None:
    if worker.returncode is None:
        with suppress(ProcessLookupError):
            worker.kill()


# --- Import rejections -----------------------------------------------------------------------


async def rejections_file(
    pool: asyncpg.Pool, actor: Principal, batch_id: UUID
) -> AsyncIterator[bytes]:
    """An import's refused rows as CSV (position, reason, detail), in file order."""
    await get_batch(pool, actor, batch_id)

    async def read(conn: Conn) -> AsyncIterator[list[Any]]:
        async for page in db_imports.rejections(conn, batch_id):
            for start in range(0, len(page), _FRAME_ROWS):
                yield page[start : start + _FRAME_ROWS]

    frames = await _spooled(pool, read)

    async def stream() -> AsyncIterator[bytes]:
        buffer, writer = _csv_writer()
        writer.writerow(("position", "reason", "detail"))
        async for rows in frames:
            for row in rows:
                writer.writerow([spreadsheet_safe(cell) for cell in row])
            yield _drain(buffer)
        yield _drain(buffer)

    return stream()
