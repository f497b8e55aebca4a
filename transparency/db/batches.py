"""Queries on code batches: issuance and import jobs, their leases and progress."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from transparency.db.errors import translated
from transparency.db.pool import Conn, is_citus
from transparency.domain.batches import UNFINISHED, Batch, BatchStatus, Job, JobKind
from transparency.domain.codes import CodeFormat

_COLUMNS = (
    "id, brand_id, product_id, kind, format, requested, lot, expiry, attributes, status,"
    " progress, report, options, created_at, started_at, finished_at, error"
)


# The statuses as SQL literals made from the domain's enum: constants, never a caller's
# text. Literals rather than parameters: under the pool's generic plans, the partial index
# of unfinished batches serves the claim only if the planner sees the values.
def _literal(status: BatchStatus) -> str:
    return f"'{status.value}'"


_PENDING = _literal(BatchStatus.PENDING)
_RUNNING = _literal(BatchStatus.RUNNING)
_DONE = _literal(BatchStatus.DONE)
_FAILED = _literal(BatchStatus.FAILED)
_UNFINISHED = ", ".join(_literal(s) for s in sorted(UNFINISHED))


def _batch(row: asyncpg.Record) -> Batch:
    return Batch(
        id=row["id"],
        brand_id=row["brand_id"],
        product_id=row["product_id"],
        kind=JobKind(row["kind"]),
        format=CodeFormat(row["format"]),
        status=BatchStatus(row["status"]),
        requested=row["requested"],
        progress=row["progress"],
        lot=row["lot"],
        expiry=row["expiry"],
        attributes=row["attributes"],
        report=row["report"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        key_id=row["options"].get("key_id"),
    )


CHANNEL = "jobs"  # a batch was queued


async def insert(
    conn: Conn,
    *,
    batch_id: UUID,
    brand_id: UUID,
    product_id: UUID,
    kind: JobKind,
    format: CodeFormat,
    requested: int,
    lot: str | None,
    expiry: date | None,
    attributes: dict[str, Any],
    options: dict[str, Any],
    content_sha256: bytes | None = None,
) -> Batch:
    with translated("this import"):
        row = await conn.fetchrow(
            "insert into code_batches (id, brand_id, product_id, kind, format, requested, lot,"
            " expiry, attributes, options, content_sha256)"
            f" values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning {_COLUMNS}",
            batch_id,
            brand_id,
            product_id,
            kind.value,
            format.value,
            requested,
            lot,
            expiry,
            attributes,
            options,
            content_sha256,
        )
    assert row is not None
    # Delivered at commit: a job runner in another process starts it now, not at its poll.
    await conn.execute("select pg_notify($1, '')", CHANNEL)
    return _batch(row)


async def lock_brand_jobs(conn: Conn, brand_id: UUID) -> int:
    """Lock the brand's row and count its queued or running batches (for the per-brand cap)."""
    if await is_citus(conn):
        # Citus serializes writes to reference tables with locks on their shards, taken
        # per statement: a job's chunk holds the batches' (its COPY into units) and then
        # wants the brands' (its progress update); this request held the brands' and then
        # wanted the batches' (its insert): a deadlock. The batches' first here too, by an
        # update of no row (it locks the batches', products' and brands', in that order).
        await conn.execute("update code_batches set progress = progress where id is null")
    await conn.execute("select 1 from brands where id = $1 for update", brand_id)
    count: int = await conn.fetchval(
        f"select count(*) from code_batches where brand_id = $1 and status in ({_UNFINISHED})",
        brand_id,
    )
    return count


async def get_owned(conn: Conn | asyncpg.Pool, brand_id: UUID, batch_id: UUID) -> Batch | None:
    """The brand's batch ``batch_id``; None for a missing one and for another brand's."""
    row = await conn.fetchrow(
        f"select {_COLUMNS} from code_batches where id = $1 and brand_id = $2", batch_id, brand_id
    )
    return None if row is None else _batch(row)


async def find_import(conn: Conn, product_id: UUID, content_sha256: bytes) -> Batch | None:
    row = await conn.fetchrow(
        f"select {_COLUMNS} from code_batches where product_id = $1 and content_sha256 = $2",
        product_id,
        content_sha256,
    )
    return None if row is None else _batch(row)


class LeaseLost(Exception):
    """Another process has claimed this job since this one's lease ran out: write nothing."""


async def claim(conn: Conn | asyncpg.Pool, lease_seconds: float) -> Job | None:
    """Take a runnable job (a pending one, or a running one whose holder died or handed it
    over), fairly across brands: never a second job of a brand that has one running, and
    first the job of the brand served longest ago (or never), then the oldest.

    Each process runs one job at a time, and a million-code batch takes a runner for about
    twenty seconds: taken oldest first, a brand's two big batches held both runners of a
    two-core `serve` while another brand's ten codes waited 38 s. Held to one running job
    each, a brand's batches run one after another, and any other brand's job starts on the
    next free runner (as per-tenant concurrency limits do in payment APIs). The job carries
    ``lease_token``, which the holder names in every later write.
    """
    row = await conn.fetchrow(
        f"update code_batches set status = {_RUNNING},"
        # started_at is never after now(): least() keeps it, or takes now() for null
        " started_at = least(started_at, now()), served_at = now(),"
        " lease_until = now() + make_interval(secs => $1), lease_token = $2"
        f" where id = (select b.id from code_batches b where {_RUNNABLE}"
        "   order by (select max(s.served_at) from code_batches s"  # the brand's last turn
        "       where s.brand_id = b.brand_id) nulls first, b.created_at"
        "   for update of b skip locked limit 1)"
        f" returning {_COLUMNS}, lease_token",
        lease_seconds,
        uuid4(),
    )
    return None if row is None else Job(_batch(row), row["lease_token"])


# A batch a runner may take: pending, or running with a lapsed lease (its holder died, or
# handed it over), of a brand with no job running.
_RUNNABLE = (
    f"(b.status = {_PENDING} or (b.status = {_RUNNING} and b.lease_until < now()))"
    " and not exists (select from code_batches r where r.brand_id = b.brand_id"
    f"   and r.status = {_RUNNING} and r.lease_until >= now())"
)


async def others_waiting(conn: Conn | asyncpg.Pool, brand_id: UUID) -> bool:
    """Whether another brand has a batch that no runner is on (``hand_over`` then)."""
    found: bool = await conn.fetchval(
        f"select exists (select from code_batches b where b.brand_id <> $1 and {_RUNNABLE})",
        brand_id,
    )
    return found


async def hand_over(conn: Conn | asyncpg.Pool, batch_id: UUID, token: UUID) -> None:
    """Give a running job's runner up between two of its chunks: its lease lapses now, so
    the next claim takes whichever brand was served longest ago, and this job, its progress
    kept, resumes once its brand's turn comes again. The token changes too: a renewal
    already on its way finds nothing to renew, and any later write raises LeaseLost."""
    status = await conn.execute(
        "update code_batches set lease_until = now() - interval '1 second',"
        " lease_token = $3"
        f" where id = $1 and lease_token = $2 and status = {_RUNNING}",
        batch_id,
        token,
        uuid4(),
    )
    if not _held(status):
        raise LeaseLost


def _held(status: str) -> bool:
    return status != "UPDATE 0"


async def renew(
    conn: Conn | asyncpg.Pool, batch_id: UUID, token: UUID, lease_seconds: float
) -> bool:
    """Extend a running job's lease (its holder is alive and at work); False if it is no
    longer this holder's."""
    return _held(
        await conn.execute(
            "update code_batches set lease_until = now() + make_interval(secs => $3)"
            f" where id = $1 and lease_token = $2 and status = {_RUNNING}",
            batch_id,
            token,
            lease_seconds,
        )
    )


async def advance(conn: Conn, batch_id: UUID, token: UUID, done: int) -> None:
    """Record ``done`` more codes written (in the transaction that wrote them, which
    LeaseLost rolls back). The lease is the holder's to renew (``renew``)."""
    status = await conn.execute(
        "update code_batches set progress = progress + $3"
        f" where id = $1 and lease_token = $2 and status = {_RUNNING}",
        batch_id,
        token,
        done,
    )
    if not _held(status):
        raise LeaseLost


async def finish(
    conn: Conn, batch_id: UUID, token: UUID, report: dict[str, Any] | None = None
) -> None:
    """The job is done (in the transaction of its last writes, which LeaseLost rolls back).

    Its finish time is this statement's: now() is the start of a transaction that an import
    holds for as long as it reads its file, minutes before it finishes."""
    status = await conn.execute(
        f"update code_batches set status = {_DONE}, finished_at = statement_timestamp(),"
        " lease_until = null, report = $3"
        f" where id = $1 and lease_token = $2 and status = {_RUNNING}",
        batch_id,
        token,
        report,
    )
    if not _held(status):
        raise LeaseLost


async def fail(
    conn: Conn | asyncpg.Pool,
    batch_id: UUID,
    token: UUID,
    error: str,
    report: dict[str, Any] | None = None,
) -> None:
    """The job failed; nothing happens if another process holds it now (it decides)."""
    await conn.execute(
        f"update code_batches set status = {_FAILED}, finished_at = statement_timestamp(),"
        " lease_until = null, error = $3, report = $4"
        f" where id = $1 and lease_token = $2 and status = {_RUNNING}",
        batch_id,
        token,
        error,
        report,
    )


async def set_requested(conn: Conn, batch_id: UUID, rows: int) -> None:
    """An import learns its size once its file is read."""
    await conn.execute(
        "update code_batches set requested = $2, progress = $2 where id = $1", batch_id, rows
    )


async def list_for_brand(
    conn: Conn | asyncpg.Pool, brand_id: UUID, kind: JobKind, limit: int
) -> list[Batch]:
    """The brand's latest ``limit`` batches of ``kind``, newest first (the brand console)."""
    rows = await conn.fetch(
        f"select {_COLUMNS} from code_batches where brand_id = $1 and kind = $2"
        " order by created_at desc, id limit $3",
        brand_id,
        kind.value,
        limit,
    )
    return [_batch(row) for row in rows]
