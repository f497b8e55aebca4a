"""Brand use cases on serial imports: queue a file, run it as a job, report on it.

The same file posted twice for a product is recognised by its SHA-256 and answered with the
first import: nothing changes. An import registers its units in one transaction, so a crash
leaves nothing half-written and the job simply runs again.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
from collections import deque
from collections.abc import AsyncIterator, Collection
from dataclasses import asdict
from itertools import islice, repeat
from uuid import UUID, uuid4

import asyncpg

from transparency.db import audit, batches, imports, products, units
from transparency.db.pool import Conn
from transparency.domain import imports as rules
from transparency.domain.batches import Batch, Job, JobKind
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import InvalidInput, LimitExceeded
from transparency.domain.identity import Principal
from transparency.domain.imports import ImportKind, ImportMode, Upload
from transparency.runtime.jobs import JobRunner
from transparency.services.batches import get_batch
from transparency.services.products import get_product

_KIND_BY_MEDIA = {
    "text/csv": ImportKind.CSV,
    "text/plain": ImportKind.GS1,
    "application/json": ImportKind.EPCIS,
    "application/ld+json": ImportKind.EPCIS,
}
MEDIA_TYPES = tuple(_KIND_BY_MEDIA)
_CHUNK = 50_000
_PIECE = 4_000_000  # characters of a line file read as one piece (about 100,000 lines)
_AHEAD = 2  # pieces being read while one is written: both workers busy, memory bounded


def kind_of(content_type: str | None, given: ImportKind | None) -> ImportKind:
    if given is not None:
        return given
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in _KIND_BY_MEDIA:
        raise InvalidInput(
            "send text/csv, text/plain (GS1 lines) or application/ld+json (EPCIS),"
            " or say ?kind=csv|gs1|epcis",
            field="content-type",
        )
    return _KIND_BY_MEDIA[media]


async def create_import(
    pool: asyncpg.Pool,
    runner: JobRunner,
    actor: Principal,
    product_id: UUID,
    *,
    content: bytes,
    kind: ImportKind,
    mode: ImportMode,
    max_jobs: int,
) -> tuple[Batch, bool]:
    """Queue an import; returns the batch and whether it is new (False: the same file again)."""
    product = await get_product(pool, actor, product_id)
    if not content.strip():
        raise InvalidInput("the file is empty", field="file")
    digest = hashlib.sha256(kind.value.encode() + b"\0" + content).digest()
    async with pool.acquire() as conn, conn.transaction():
        count = await batches.lock_brand_jobs(conn, product.brand_id)
        earlier = await batches.find_import(conn, product.id, digest)
        if earlier is not None:
            return earlier, False
        if count >= max_jobs:
            raise LimitExceeded(
                f"this brand already has {max_jobs} batches queued or running", retry_after=10
            )
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
            options={"kind": kind.value, "mode": mode.value},
            content_sha256=digest,
        )
        await imports.store_upload(conn, batch.id, Upload(kind, mode, content))
        await audit.record(
            conn, api_key_id=actor.key_id, action="import.create", target=str(batch.id),
            brand_id=product.brand_id, detail={"kind": kind.value, "mode": mode.value,
                                               "bytes": len(content)},
        )  # fmt: skip
    runner.wake()
    return batch, True


async def run_import(runner: JobRunner, job: Job) -> None:
    """The job: read the file, check every row, register the accepted units at once.

    Pieces of the file are read in worker processes (two pieces ahead) while the rows of
    earlier pieces are checked and written, all in one transaction: an all-or-nothing
    import that meets a bad row rolls the whole file back. Only the pieces in hand are held
    (all of a file's read pieces, waiting for the database, once held every row at once).
    """
    pool, batch, token = runner.pool, job.batch, job.lease_token
    upload = await imports.upload(pool, batch.id)
    product = await products.get_owned(pool, batch.brand_id, batch.product_id)
    assert upload is not None
    assert product is not None
    mode, kind, gtin = upload.mode, upload.kind, product.gtin
    try:
        text = rules.decode(upload.content)
    except InvalidInput as exc:
        await batches.fail(pool, batch.id, token, exc.detail, {"accepted": 0, "rejected": 0})
        return
    del upload  # the file's bytes: only its text is needed from here
    parts = rules.pieces(text, kind, _PIECE)
    reads: deque[asyncio.Future[tuple[rules.Columns, list[rules.Rejection]]]] = deque()

    def read_ahead() -> None:
        for first, piece in islice(parts, _AHEAD - len(reads)):
            reads.append(runner.cpu(rules.read_for_job, piece, kind, gtin, first))

    read_ahead()
    accepted = 0
    rejected: list[rules.Rejection] = []
    seen: dict[str, str] = {}
    try:
        async with pool.acquire() as conn, conn.transaction():
            while reads:
                columns, refused = await reads.popleft()
                read_ahead()
                rejected.extend(refused)
                keys = columns.keys
                keep = [True] * len(keys)
                first_seen = {key: seen[key] for key in seen.keys() & keys}
                for i in _indexes(keys, first_seen.keys()):
                    detail = f"serial already at {first_seen[keys[i]]}"
                    rejected.append(
                        rules.Rejection(columns.positions[i], "duplicate_in_file", detail)
                    )
                    keep[i] = False
                seen.update(zip(keys, columns.positions, strict=True))
                seen.update(first_seen)  # a repeat names the first line, not the last
                taken = await units.existing(conn, keys)
                for i in _indexes(keys, taken):
                    if not keep[i]:  # a repeat of an earlier piece's row, registered by it
                        continue
                    detail = "this serial is registered"
                    rejected.append(
                        rules.Rejection(columns.positions[i], "already_registered", detail)
                    )
                    keep[i] = False
                if rejected and mode is ImportMode.ALL_OR_NOTHING:
                    continue  # keep reading: the report names every refused row
                rows = zip(  # the repeats are endless: the columns set the length
                    keys, repeat(product.brand_id), repeat(product.id), repeat(batch.id),
                    columns.lots, columns.expiries, repeat("active"), strict=False,
                )  # fmt: skip
                fresh = (
                    list(rows) if all(keep) else [r for r, k in zip(rows, keep, strict=True) if k]
                )
                await units.copy(conn, fresh)
                accepted += len(fresh)
            register = not (rejected and mode is ImportMode.ALL_OR_NOTHING)
            if not register:
                raise _RollBack
            await _close(conn, batch.id, token, mode, accepted, rejected, register=True)
    except _RollBack:
        async with pool.acquire() as conn, conn.transaction():
            await _close(conn, batch.id, token, mode, 0, rejected, register=False)
    except InvalidInput as exc:
        await batches.fail(pool, batch.id, token, exc.detail, {"accepted": 0, "rejected": 0})
    finally:
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
    accepted: int,
    rejected: list[rules.Rejection],
    *,
    register: bool,
) -> None:
    rejected.sort(key=_file_order)
    await imports.record_rejections(
        conn, batch_id, [(r.position, r.reason, r.detail) for r in rejected]
    )
    rows = accepted + len(rejected)
    report = {
        "mode": mode.value,
        "rows": rows,
        "accepted": accepted,
        "rejected": len(rejected),
        "registered": register,
        "first_rejections": [asdict(r) for r in rejected[:100]],
    }
    await batches.set_requested(conn, batch_id, rows)
    await batches.finish(conn, batch_id, token, report)
    await imports.drop_upload(conn, batch_id)


_LINE = re.compile(r"line (\d+)")


def _file_order(rejection: rules.Rejection) -> int:
    """Line files sort by line; other positions keep the order they were found in."""
    match = _LINE.fullmatch(rejection.position)
    return int(match.group(1)) if match else 0


async def rejection_report(
    pool: asyncpg.Pool, actor: Principal, batch_id: UUID
) -> AsyncIterator[bytes]:
    await get_batch(pool, actor, batch_id)

    async def stream() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("position", "reason", "detail"))
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            async for row in imports.rejections(conn, batch_id):
                writer.writerow(row)
                if buffer.tell() > 65536:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue().encode()

    return stream()
