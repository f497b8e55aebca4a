"""Queries on import uploads and their rejection reports.

An upload's bytes live in a PostgreSQL large object, written and read a megabyte at a time:
a 256 MB file was once one bytea parameter, held whole (and copied) by the process that
stored it and the one that read it back. Its rejection report is stored a page per piece
of the file (0015_rejection_pages.sql).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import BinaryIO
from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.imports import ImportKind, ImportMode, Upload

CHUNK = 1_048_576  # bytes written or read a statement


async def store_upload(conn: Conn, batch_id: UUID, upload: Upload, content: BinaryIO) -> None:
    """Store ``content`` (read from its start, a chunk at a time) as the upload of a batch."""
    oid: int = await conn.fetchval("select lo_create(0)")
    offset = 0
    for chunk in _chunks(content):
        await conn.execute("select lo_put($1, $2, $3)", oid, offset, chunk)
        offset += len(chunk)
    await conn.execute(
        "insert into import_uploads (batch_id, content_type, mode, content)"
        " values ($1, $2, $3, '')",
        batch_id,
        upload.kind.value,
        upload.mode.value,
    )
    await conn.execute(
        "update code_batches set options = options || jsonb_build_object('upload', $2::bigint)"
        " where id = $1",
        batch_id,
        oid,
    )


def _chunks(content: BinaryIO) -> Iterator[bytes]:
    content.seek(0)
    while chunk := content.read(CHUNK):
        yield chunk


async def upload(conn: Conn | asyncpg.Pool, batch_id: UUID) -> Upload | None:
    row = await conn.fetchrow(
        "select u.content_type, u.mode, (b.options ->> 'max_rows')::integer as max_rows"
        " from import_uploads u join code_batches b on b.id = u.batch_id where u.batch_id = $1",
        batch_id,
    )
    if row is None:
        return None
    return Upload(ImportKind(row["content_type"]), ImportMode(row["mode"]), row["max_rows"])


async def content(pool: asyncpg.Pool, batch_id: UUID) -> AsyncIterator[bytes]:
    """An upload's bytes, a chunk at a time (a connection held only while one is read)."""
    oid = await pool.fetchval(
        "select (options ->> 'upload')::bigint from code_batches where id = $1", batch_id
    )
    if oid is None:  # stored whole, before uploads were large objects
        whole = await pool.fetchval(
            "select content from import_uploads where batch_id = $1", batch_id
        )
        if whole:
            yield whole
        return
    offset = 0
    while True:
        chunk: bytes = await pool.fetchval("select lo_get($1, $2, $3)", oid, offset, CHUNK)
        if chunk:
            yield chunk
        if len(chunk) < CHUNK:
            return
        offset += len(chunk)


async def drop_upload(conn: Conn, batch_id: UUID) -> None:
    await conn.execute(
        "select lo_unlink(oid) from pg_largeobject_metadata where oid ="
        " (select (options ->> 'upload')::bigint from code_batches where id = $1)::oid",
        batch_id,
    )
    await conn.execute("update import_uploads set content = '' where batch_id = $1", batch_id)


async def clear_rejections(conn: Conn | asyncpg.Pool, batch_id: UUID) -> None:
    await conn.execute("delete from import_rejection_pages where batch_id = $1", batch_id)


async def record_rejections(
    conn: Conn, batch_id: UUID, page: int, rejections: Sequence[tuple[str, str, str]]
) -> None:
    """Store one page of refused rows (a piece of the file's, in file order) as page number
    ``page``, encoded and compressed here, by the caller's process: PostgreSQL stores a few
    kilobytes instead of a row per refusal."""
    if not rejections:
        return
    lines = "\n".join(json.dumps(row, ensure_ascii=False) for row in rejections)
    await conn.execute(
        "insert into import_rejection_pages (batch_id, page, rows, compressed, lines)"
        " values ($1, $2, $3, true, $4)",
        batch_id,
        page,
        len(rejections),
        zlib.compress(lines.encode(), 1),
    )


async def rejections(conn: Conn, batch_id: UUID) -> AsyncIterator[list[tuple[str, str, str]]]:
    """Every refused row of an import, in file order, a page at a time (call inside a
    transaction)."""
    async for row in conn.cursor(
        "select compressed, lines from import_rejection_pages where batch_id = $1 order by page",
        batch_id,
        prefetch=4,  # a page is up to 16,384 rows
    ):
        data: bytes = zlib.decompress(row["lines"]) if row["compressed"] else row["lines"]
        rows = json.loads(b"[" + data.replace(b"\n", b",") + b"]")
        yield [(position, reason, detail) for position, reason, detail in rows]
