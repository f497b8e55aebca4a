"""Queries on customers' reports. A brand's reads name the brand in the WHERE clause."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from transparency.db.pool import Conn
from transparency.domain.reports import NewReport, Report

_COLUMNS = "id, brand_id, code, reason, unit_state, place, region, note, photo_type, created_at"

# The brand is the key's (a forgery's) or else the registered unit's, found here so that
# a report costs one statement; the client never names a brand.
_INSERT = f"""
insert into customer_reports
    (id, brand_id, code, reason, unit_state, place, region, note, photo, photo_type)
select $1, coalesce($2::uuid, u.brand_id), $3, $4, u.state::text, $5, $6, $7, $8, $9
from (select 1) one
left join units u on u.code = $3 and $10
returning {_COLUMNS}
"""


async def insert(
    conn: Conn | asyncpg.Pool,
    report_id: UUID,
    *,
    code: str,
    names_unit: bool,
    brand_id: UUID | None,
    reason: str | None,
    report: NewReport,
) -> Report:
    row = await conn.fetchrow(
        _INSERT, report_id, brand_id, code, reason, report.place, report.region, report.note,
        report.photo, report.photo_type, names_unit,
    )  # fmt: skip
    assert row is not None
    return Report(**row)


async def page(
    conn: Conn | asyncpg.Pool,
    brand_id: UUID | None,
    *,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Report]:
    """The brand's reports, newest first (every brand's, and none's, for ``brand_id``
    None: operators), keyset-paginated."""
    scope = "brand_id = $1" if brand_id is not None else "$1::uuid is null"
    after = "" if before is None else " and (created_at, id) < ($3, $4)"
    rows = await conn.fetch(
        f"select {_COLUMNS} from customer_reports where {scope}{after}"
        " order by created_at desc, id desc limit $2",
        brand_id,
        limit,
        *(() if before is None else before),
    )
    return [Report(**r) for r in rows]


async def photo(
    conn: Conn | asyncpg.Pool, brand_id: UUID | None, report_id: UUID
) -> tuple[bytes, str] | None:
    """A report's photo and its type, when the brand (any, for None) has that report."""
    row = await conn.fetchrow(
        "select photo, photo_type from customer_reports where id = $1 and photo is not null"
        " and ($2::uuid is null or brand_id = $2)",
        report_id,
        brand_id,
    )
    return None if row is None else (row["photo"], row["photo_type"])
