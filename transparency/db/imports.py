"""Queries on import uploads and their rejection reports.

An upload's bytes live in a PostgreSQL large object, written and read a megabyte at a time:
a 256 MB file was once one bytea parameter, held whole (and copied) by the process that
stored it and the one that read it back. Its rejection report is stored a page per piece
of the file (0015_rejection_pages.sql).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, BinaryIO
from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.imports import ImportKind, ImportMode, Upload

CHUNK = 1_048_576  # bytes written or read a statement


async def store_upload(
    conn: Conn, batch_id: UUID, upload: Upload, content: BinaryIO, *, deflated: bool = False
) -> None:
    """Store ``content`` (read from its start, a chunk at a time) as the upload of a batch;
    ``deflated``: it is the file zlib-compressed, and ``content()`` inflates it."""
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
        "update code_batches set options = options"
        " || jsonb_build_object('upload', $2::bigint, 'upload_deflated', $3::boolean)"
        " where id = $1",
        batch_id,
        oid,
        deflated,
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
    """An upload's bytes, a chunk at a time (a connection held only while one is read);
    inflated if it was stored deflated, each piece at most CHUNK bytes however well the
    file compressed."""
    row = await pool.fetchrow(
        "select (options ->> 'upload')::bigint as oid,"
        " coalesce((options ->> 'upload_deflated')::boolean, false) as deflated"
        " from code_batches where id = $1",
        batch_id,
    )
    if row is None or row["oid"] is None:  # stored whole, before uploads were large objects
        whole = await pool.fetchval(
            "select content from import_uploads where batch_id = $1", batch_id
        )
        if whole:
            yield whole
        return
    oid, inflater = row["oid"], zlib.decompressobj() if row["deflated"] else None
    offset = 0
    while True:
        chunk: bytes = await pool.fetchval("select lo_get($1, $2, $3)", oid, offset, CHUNK)
        if inflater is None:
            if chunk:
                yield chunk
        else:
            for piece in _inflated(inflater, chunk, last=len(chunk) < CHUNK):
                yield piece
        if len(chunk) < CHUNK:
            return
        offset += len(chunk)


def _inflated(inflater: zlib._Decompress, data: bytes, *, last: bool) -> Iterator[bytes]:
    """``data`` inflated, CHUNK bytes at most a piece (a megabyte of a repeated line
    inflates to a gigabyte)."""
    while data:
        if piece := inflater.decompress(data, CHUNK):
            yield piece
        data = inflater.unconsumed_tail
    if last and (rest := inflater.flush()):
        yield rest


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
    kilobytes instead of a row per refusal.

    Consecutive lines refused for the same reason and detail are stored as one run
    (``[first line, reason, detail, count]``): a file of one serial repeated a million times
    stores a line a page, where zlib alone left 40 KB a page (2.7 MB a file, written again
    in the WAL, and a hostile brand can send such a file every second).
    """
    if not rejections:
        return
    lines = "\n".join(json.dumps(row, ensure_ascii=False) for row in _runs(rejections))
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
        yield _expanded(json.loads(b"[" + data.replace(b"\n", b",") + b"]"))


def _runs(rejections: Sequence[tuple[str, str, str]]) -> Iterator[list[str | int]]:
    """Refused rows with runs collapsed: a row whose position is the line after the run's
    last ("line 8" after "line 7"), for the same reason and detail, adds one to the run's
    count."""
    run: list[Any] | None = None  # [first position, reason, detail, count]
    first: tuple[str, int] | None = None  # the run's first position: text, then number
    for position, reason, detail in rejections:
        numbered = _numbered(position)
        if (
            run is not None
            and first is not None
            and (reason, detail) == (run[1], run[2])
            and numbered == (first[0], first[1] + run[3])
        ):
            run[3] += 1
            continue
        if run is not None:
            yield run if run[3] > 1 else run[:3]
        run, first = [position, reason, detail, 1], numbered
    if run is not None:
        yield run if run[3] > 1 else run[:3]


_NUMBERED = re.compile(r"(.*?)([1-9][0-9]*)")


def _numbered(position: str) -> tuple[str, int] | None:
    """A position ending in a number (no leading zero): its text before, and the number."""
    match = _NUMBERED.fullmatch(position)
    if match is None or not match[2].isascii():
        return None
    return match[1], int(match[2])


def _expanded(lines: list[list[Any]]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for line in lines:
        if len(line) == 4:
            first, reason, detail, count = line
            numbered = _numbered(first)
            assert numbered is not None, "a run starts at a numbered position"
            text, number = numbered
            rows.extend((f"{text}{number + i}", reason, detail) for i in range(count))
        else:
            position, reason, detail = line
            rows.append((position, reason, detail))
    return rows
