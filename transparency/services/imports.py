"""Brand use cases on serial imports: queue a file, run it as a job, report on it.

The same file posted twice for a product is recognised by its SHA-256 and answered with the
first import: nothing changes. An import registers its units in one transaction, so a crash
leaves nothing half-written and the job simply runs again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import AsyncIterator
from dataclasses import asdict
from uuid import UUID, uuid4

import asyncpg

from transparency.db import audit, batches, imports, products, units
from transparency.domain import imports as rules
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import InvalidInput, LimitExceeded
from transparency.domain.identity import Principal
from transparency.domain.imports import ImportKind, ImportMode
from transparency.jobs import JobRunner
from transparency.services.batches import Batch, brand_product, get_batch

_KIND_BY_MEDIA = {
    "text/csv": ImportKind.CSV,
    "text/plain": ImportKind.GS1,
    "application/json": ImportKind.EPCIS,
    "application/ld+json": ImportKind.EPCIS,
}
MEDIA_TYPES = tuple(_KIND_BY_MEDIA)
_CHUNK = 50_000


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
    product = await brand_product(pool, actor, product_id)
    if not content.strip():
        raise InvalidInput("the file is empty", field="file")
    digest = hashlib.sha256(kind.value.encode() + b"\0" + content).digest()
    async with pool.acquire() as conn, conn.transaction():
        count = await batches.lock_brand_jobs(conn, product.brand_id)
        earlier = await batches.find_import(conn, product.id, digest)
        if earlier is not None:
            return Batch.of(earlier), False
        if count >= max_jobs:
            raise LimitExceeded(
                f"this brand already has {max_jobs} batches queued or running", retry_after=10
            )
        row = await batches.insert(
            conn,
            batch_id=uuid4(),
            brand_id=product.brand_id,
            product_id=product.id,
            kind="import",
            format=CodeFormat.GS1.value,
            requested=0,
            lot=None,
            expiry=None,
            attributes={},
            options={"kind": kind.value, "mode": mode.value},
            content_sha256=digest,
        )
        await imports.store_upload(conn, row["id"], kind.value, mode.value, content)
        await audit.record(
            conn, api_key_id=actor.key_id, action="import.create", target=str(row["id"]),
            brand_id=product.brand_id, detail={"kind": kind.value, "mode": mode.value,
                                               "bytes": len(content)},
        )  # fmt: skip
    runner.wake()
    return Batch.of(row), True


async def run_import(pool: asyncpg.Pool, job: asyncpg.Record) -> None:
    """The job: read the file, check every row, register the accepted units at once."""
    upload = await imports.upload(pool, job["id"])
    product = await products.get(pool, job["product_id"])
    assert upload is not None
    assert product is not None
    mode = ImportMode(upload["mode"])
    try:
        accepted, rejected = rules.read(
            upload["content"], ImportKind(upload["content_type"]), product.gtin
        )
    except InvalidInput as exc:
        await batches.fail(pool, job["id"], exc.detail, {"accepted": 0, "rejected": 0})
        return
    async with pool.acquire() as conn, conn.transaction():
        for start in range(0, len(accepted), _CHUNK):
            chunk = accepted[start : start + _CHUNK]
            taken = await units.existing(conn, [r.unit_key(product.gtin) for r in chunk])
            for row in chunk:
                if row.unit_key(product.gtin) in taken:
                    rejected.append(
                        rules.Rejection(
                            row.position, "already_registered", "this serial is registered"
                        )
                    )
        if rejected:
            refused = {r.position for r in rejected}
            accepted = [r for r in accepted if r.position not in refused]
        register = not (rejected and mode is ImportMode.ALL_OR_NOTHING)
        if register:
            for start in range(0, len(accepted), _CHUNK):
                await units.copy(
                    conn,
                    [
                        (row.unit_key(product.gtin), product.brand_id, product.id, job["id"],
                         row.lot, row.expiry, "active")
                        for row in accepted[start : start + _CHUNK]
                    ],
                )  # fmt: skip
        rejected.sort(key=_file_order)
        await imports.record_rejections(
            conn, job["id"], [(r.position, r.reason, r.detail) for r in rejected]
        )
        rows = len(accepted) + len(rejected)
        report = {
            "mode": mode.value,
            "rows": rows,
            "accepted": len(accepted) if register else 0,
            "rejected": len(rejected),
            "registered": register,
            "first_rejections": [asdict(r) for r in rejected[:100]],
        }
        await batches.set_requested(conn, job["id"], rows)
        await batches.finish(conn, job["id"], report)
        await imports.drop_upload(conn, job["id"])


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
