"""Brand use cases on serial imports: queue a file, run it as a job, report on it.

The same file posted twice for a product is recognised by its SHA-256 and answered with the
first import: nothing changes. An import registers its units in one transaction, so a crash
leaves nothing half-written and the job simply runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import tempfile
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from dataclasses import asdict, replace
from itertools import repeat
from typing import IO
from uuid import UUID, uuid4

import asyncpg

from transparency.db import audit, batches, imports, products, units
from transparency.db.pool import Conn, lift_timeouts
from transparency.domain import epcis_xml
from transparency.domain import imports as rules
from transparency.domain.batches import Batch, Job, JobKind
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import InvalidCode, InvalidInput, LimitExceeded
from transparency.domain.identity import Principal
from transparency.domain.imports import ImportKind, ImportMode, Upload
from transparency.runtime.jobs import JobRunner
from transparency.runtime.workers import bulk_step
from transparency.services.products import get_product

_KIND_BY_MEDIA = {
    "text/csv": ImportKind.CSV,
    "text/plain": ImportKind.GS1,
    "application/json": ImportKind.EPCIS,
    "application/ld+json": ImportKind.EPCIS,
    # EPCIS 1.2 or 2.0 XML: read into the JSON-LD shape, then imported as JSON-LD is.
    "application/xml": ImportKind.EPCIS,
    "text/xml": ImportKind.EPCIS,
}
MEDIA_TYPES = tuple(_KIND_BY_MEDIA)
# Characters of a line file read as one piece: 10,000 rows of a usual file. A piece has at
# most 16,384 lines however short they are (``LinePieces``), so its refused rows (about 200
# bytes each) stay near 3 MB: pieces of 4 million characters once handed back two million
# refusals at a time for a file of repeats.
_PIECE = 262_144
_AHEAD = 2  # pieces being read while one is written: both workers busy, memory bounded
_FIRST = 100  # refused rows named in the batch's report; rejections.csv has them all
# Bytes of an upload deflated and hashed at a time, on the bulk thread: the claims on this
# API process's event loop never wait for them (bench_faults.py's hostile import: 12 MB
# files, one a second, took a quarter of one process's loop in 64 KB steps of about 1 ms).
_HANDOFF = 1 << 20


class _Packer:
    """An upload spooled deflated and hashed as it arrives, a piece at a time.

    Spooled and stored deflated (level 1): a file of serials takes a third of its size in
    the database's WAL and pages, and a file of one serial repeated a million times
    (bench_faults.py's hostile import) a thousandth, instead of keeping the disk's
    writeback busy beside the claims. ``add`` runs on the bulk thread (``bulk_step``): zlib
    and hashlib let go of the GIL while they work on a piece."""

    def __init__(self, spool: IO[bytes], prefix: bytes) -> None:
        self._spool = spool
        self._deflate = zlib.compressobj(1)
        self._hash = hashlib.sha256(prefix)
        self.blank = True

    def add(self, pieces: list[bytes], *, last: bool = False) -> None:
        for piece in pieces:
            self._spool.write(self._deflate.compress(piece))
            self._hash.update(piece)
            self.blank = self.blank and not piece.strip()
        if last:
            self._spool.write(self._deflate.flush())

    @property
    def digest(self) -> bytes:
        return self._hash.digest()


def kind_of(content_type: str | None, given: ImportKind | None) -> ImportKind:
    if given is not None:
        return given
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in _KIND_BY_MEDIA:
        raise InvalidInput(
            "send text/csv, text/plain (GS1 lines), application/ld+json or application/xml"
            " (EPCIS), or say ?kind=csv|gs1|epcis",
            field="content-type",
        )
    return _KIND_BY_MEDIA[media]


async def create_import(
    pool: asyncpg.Pool,
    runner: JobRunner,
    actor: Principal,
    product_id: UUID,
    *,
    body: AsyncIterator[bytes],
    kind: ImportKind,
    mode: ImportMode,
    max_jobs: int,
    max_rows: int,
) -> tuple[Batch, bool]:
    """Queue an import; returns the batch and whether it is new (False: the same file again).

    The brand's cap on jobs is checked before a byte of the file is read (so at the cap
    even the same file again gets 429: it is not read to be recognised), and the file is
    spooled to disk as it arrives: a slow or large upload holds neither memory nor a pooled
    connection, and the transaction that stores it lasts as long as a local copy does.
    """
    product = await get_product(pool, actor, product_id)
    async with pool.acquire() as conn, conn.transaction():
        if await batches.lock_brand_jobs(conn, product.brand_id) >= max_jobs:
            raise _busy(max_jobs)
    with tempfile.TemporaryFile() as spool:
        # The same file in another mode is another request: the mode decides the answer.
        packer = _Packer(spool, f"{kind.value}\0{mode.value}\0".encode())
        held: list[bytes] = []
        size = handed = 0
        async for chunk in body:
            held.append(chunk)
            size += len(chunk)
            if size - handed >= _HANDOFF:
                await bulk_step(packer.add, held)
                held, handed = [], size
        await bulk_step(packer.add, held, last=True)
        if packer.blank:
            raise InvalidInput("the file is empty", field="file")
        digest = packer.digest
        async with pool.acquire() as conn, conn.transaction():
            count = await batches.lock_brand_jobs(conn, product.brand_id)
            earlier = await batches.find_import(conn, product.id, digest)
            if earlier is not None:
                return earlier, False
            if count >= max_jobs:
                raise _busy(max_jobs)
            batch = await batches.insert(
                conn,
                batch_id=uuid4(),
                brand_id=product.brand_id,
                product_id=product.id,
                kind=JobKind.IMPORT,
                format=CodeFormat.GS1,
                requested=0,
                lot=None,
                expiry=None,
                attributes={},
                options={"kind": kind.value, "mode": mode.value, "max_rows": max_rows},
                content_sha256=digest,
            )
            await imports.store_upload(
                conn, batch.id, Upload(kind, mode, max_rows), spool, deflated=True
            )
            await audit.record(
                conn, api_key_id=actor.key_id, action="import.create", target=str(batch.id),
                brand_id=product.brand_id, detail={"kind": kind.value, "mode": mode.value,
                                                   "bytes": size},
            )  # fmt: skip
    runner.wake()
    return batch, True


def _busy(max_jobs: int) -> LimitExceeded:
    return LimitExceeded(
        f"this brand already has {max_jobs} batches queued or running", retry_after=10
    )


def _is_xml(start: bytes) -> bool:
    """Whether an EPCIS upload is XML (JSON starts with ``{``), by its first bytes."""
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: XML may be, JSON may not
        return True
    return start.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


async def _again(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _xml(first: bytes, rest: AsyncIterator[bytes]) -> bytes:
    """An XML upload's bytes (decoded by the parser: XML names its own encoding)."""
    parts, size = [], 0
    async for chunk in _again(first, rest):
        parts.append(chunk)
        size += len(chunk)
        if size > epcis_xml.MAX_XML_BYTES:
            raise InvalidInput(
                f"an EPCIS XML document holds at most {epcis_xml.MAX_XML_BYTES} bytes",
                field="file",
            )
    return b"".join(parts)


def read_xml_for_job(
    content: bytes, gtin: str, max_rows: int
) -> tuple[rules.Columns, list[rules.Rejection]]:
    """``rules.read_for_job`` for an EPCIS XML document, in a worker process: read into the
    JSON-LD shape, then checked by the very code that checks JSON-LD."""
    try:
        document = epcis_xml.document_from_xml(content)
    except InvalidCode as exc:
        raise InvalidInput(exc.detail, field="file") from None
    text = json.dumps(document)
    del document  # about 100 bytes an EPC: not held while the text is read again
    return rules.read_for_job(text, ImportKind.EPCIS, gtin, 1, max_rows)


async def _pieces(
    pool: asyncpg.Pool, batch_id: UUID, kind: ImportKind
) -> AsyncGenerator[tuple[int, str | bytes], None]:
    """The upload's text as it is read from the database, cut into pieces for the workers
    (an EPCIS document is one piece: JSON is decoded whole; XML is handed on as bytes)."""
    decoder = rules.Decoder()
    if kind is ImportKind.EPCIS:
        content = aiter(imports.content(pool, batch_id))
        first = await anext(content, b"")
        if _is_xml(first):
            yield 1, await _xml(first, content)
            return
        parts, size = [], 0
        async for chunk in _again(first, content):
            parts.append(decoder.feed(chunk))
            size += len(parts[-1])
            if size > rules.MAX_EPCIS_CHARS:
                raise InvalidInput(
                    f"an EPCIS document holds at most {rules.MAX_EPCIS_CHARS} characters",
                    field="file",
                )
        parts.append(decoder.feed(b"", final=True))
        yield 1, "".join(parts)
        return
    cutter = rules.LinePieces(_PIECE)
    async for chunk in imports.content(pool, batch_id):
        for piece in cutter.feed(decoder.feed(chunk)):
            yield piece
    for piece in cutter.feed(decoder.feed(b"", final=True)) + cutter.end():
        yield piece


async def run_import(runner: JobRunner, job: Job) -> None:
    """The job: read the file, check every row, register the accepted units at once.

    Pieces of the file are read from the database and checked in worker processes (two
    pieces ahead) while the rows of earlier pieces are written, all in one transaction: an
    all-or-nothing import that meets a bad row rolls the whole file back. Only the pieces
    in hand are held, and of the refused rows only the first hundred (for the report): the
    others go to the rejections table as each piece is done, over a connection of their
    own so that a rolled-back import keeps its report.
    """
    pool, batch, token = runner.pool, job.batch, job.lease_token
    upload = await imports.upload(pool, batch.id)
    product = await products.get_owned(pool, batch.brand_id, batch.product_id)
    assert upload is not None
    assert product is not None
    mode, kind, gtin = upload.mode, upload.kind, product.gtin
    max_rows = upload.max_rows or rules.DEFAULT_MAX_ROWS
    parts = _pieces(pool, batch.id, kind)
    reads: deque[asyncio.Future[tuple[rules.Columns, list[rules.Rejection]]]] = deque()

    async def read_ahead() -> None:
        while len(reads) < _AHEAD and (part := await anext(parts, None)) is not None:
            first, piece = part
            if isinstance(piece, bytes):
                reads.append(runner.cpu(read_xml_for_job, piece, gtin, max_rows))
            else:
                reads.append(runner.cpu(rules.read_for_job, piece, kind, gtin, first, max_rows))

    accepted = rejected = rows = pages = 0
    first_rejections: list[rules.Rejection] = []
    seen: dict[str, str] = {}
    try:
        async with pool.acquire() as report, pool.acquire() as conn, conn.transaction():
            await lift_timeouts(conn)  # it waits for the workers: bounded by the job's lease
            await imports.clear_rejections(report, batch.id)
            await read_ahead()
            while reads:
                columns, refused = await reads.popleft()
                await read_ahead()
                rows += len(columns.keys) + len(refused)
                if rows > max_rows:
                    raise rules.too_many_rows(max_rows)
                keys = columns.keys
                keep = [True] * len(keys)
                first_seen = {key: seen[key] for key in seen.keys() & keys}
                # A repeat within this piece names the piece's first row of its serial (its
                # worker saw no other piece); when that row repeats an earlier piece's, the
                # file's first is named instead.
                earlier: dict[str, str] = {}
                for i in _indexes(keys, first_seen.keys()):
                    detail = rules.duplicate_detail(first_seen[keys[i]])
                    earlier[rules.duplicate_detail(columns.positions[i])] = detail
                    refused.append(
                        rules.Rejection(columns.positions[i], "duplicate_in_file", detail)
                    )
                    keep[i] = False
                if earlier:
                    refused = [
                        replace(r, detail=earlier[r.detail])
                        if r.reason == "duplicate_in_file" and r.detail in earlier
                        else r
                        for r in refused
                    ]
                seen.update(zip(keys, columns.positions, strict=True))
                seen.update(first_seen)  # a repeat names the first line, not the last
                # Only the rows still kept are looked up: a file of one serial repeated a
                # million times looked it up a million times, on PostgreSQL's full priority.
                taken = await units.existing(
                    conn, [k for k, kept in zip(keys, keep, strict=True) if kept]
                )
                for i in _indexes(keys, taken):
                    if not keep[i]:  # a repeat of an earlier piece's row, registered by it
                        continue
                    detail = "this serial is registered"
                    refused.append(
                        rules.Rejection(columns.positions[i], "already_registered", detail)
                    )
                    keep[i] = False
                if refused:
                    refused.sort(key=_file_order)  # pieces come in file order: so does all
                    await imports.record_rejections(
                        report, batch.id, pages, [(r.position, r.reason, r.detail) for r in refused]
                    )
                    pages += 1
                    first_rejections.extend(refused[: _FIRST - len(first_rejections)])
                    rejected += len(refused)
                if rejected and mode is ImportMode.ALL_OR_NOTHING:
                    continue  # keep reading: the report names every refused row
                rows_in = zip(  # the repeats are endless: the columns set the length
                    keys, repeat(product.brand_id), repeat(product.id), repeat(batch.id),
                    columns.lots, columns.expiries, repeat("active"), strict=False,
                )  # fmt: skip
                fresh = (
                    list(rows_in)
                    if all(keep)
                    else [r for r, k in zip(rows_in, keep, strict=True) if k]
                )
                await units.copy(conn, fresh)
                accepted += len(fresh)
            if rejected and mode is ImportMode.ALL_OR_NOTHING:
                raise _RollBack
            await _close(conn, batch.id, token, mode, rows, accepted, rejected, first_rejections)
    except _RollBack:
        async with pool.acquire() as conn, conn.transaction():
            await _close(conn, batch.id, token, mode, rows, 0, rejected, first_rejections)
    except InvalidInput as exc:
        await imports.clear_rejections(pool, batch.id)  # a failed import reports no rows
        await batches.fail(pool, batch.id, token, exc.detail, {"accepted": 0, "rejected": 0})
    finally:
        await parts.aclose()
        for pending in reads:  # a failed job's pieces still being read
            pending.cancel()


def _indexes(keys: list[str], wanted: Collection[str]) -> list[int]:
    """Where the (usually none) ``wanted`` keys stand in ``keys``."""
    if not wanted:
        return []
    return [i for i, key in enumerate(keys) if key in wanted]


class _RollBack(Exception):
    """An all-or-nothing import refused: undo every unit it wrote."""


async def _close(
    conn: Conn,
    batch_id: UUID,
    token: UUID,
    mode: ImportMode,
    rows: int,
    accepted: int,
    rejected: int,
    first_rejections: list[rules.Rejection],
) -> None:
    """``rows``: every row of the file, also those an all-or-nothing refusal never checked
    against the database (accepted + rejected counted only the refused ones then)."""
    report = {
        "mode": mode.value,
        "rows": rows,
        "accepted": accepted,
        "rejected": rejected,
        "registered": not (rejected and mode is ImportMode.ALL_OR_NOTHING),
        "first_rejections": [asdict(r) for r in first_rejections],
    }
    await batches.set_requested(conn, batch_id, rows)
    await batches.finish(conn, batch_id, token, report)
    await imports.drop_upload(conn, batch_id)


_LINE = re.compile(r"line (\d+)")


def _file_order(rejection: rules.Rejection) -> int:
    """Line files sort by line; other positions keep the order they were found in."""
    match = _LINE.fullmatch(rejection.position)
    return int(match.group(1)) if match else 0
