"""Queries on import uploads and their rejection reports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.imports import ImportKind, ImportMode, Upload


async def store_upload(conn: Conn, batch_id: UUID, upload: Upload) -> None:
    await conn.execute(
        "insert into import_uploads (batch_id, content_type, mode, content)"
        " values ($1, $2, $3, $4)",
        batch_id,
        upload.kind.value,
        upload.mode.value,
        upload.content,
    )


async def upload(conn: Conn | asyncpg.Pool, batch_id: UUID) -> Upload | None:
    row = await conn.fetchrow(
        "select content_type, mode, content from import_uploads where batch_id = $1", batch_id
    )
    if row is None:
        return None
    return Upload(ImportKind(row["content_type"]), ImportMode(row["mode"]), row["content"])


async def drop_upload(conn: Conn, batch_id: UUID) -> None:
    await conn.execute("update import_uploads set content = '' where batch_id = $1", batch_id)


async def record_rejections(
    conn: Conn, batch_id: UUID, rejections: Sequence[tuple[str, str, str]]
) -> None:
    await conn.execute("delete from import_rejections where batch_id = $1", batch_id)
    await conn.copy_records_to_table(
        "import_rejections",
        records=[(batch_id, p, i, r, d) for i, (p, r, d) in enumerate(rejections)],
        columns=("batch_id", "position", "seq", "reason", "detail"),
    )


async def rejections(conn: Conn, batch_id: UUID) -> AsyncIterator[tuple[str, str, str]]:
    """Every refused row of an import, in file order (call inside a transaction)."""
    async for row in conn.cursor(
        "select position, reason, detail from import_rejections where batch_id = $1 order by seq",
        batch_id,
    ):
        yield row["position"], row["reason"], row["detail"]
