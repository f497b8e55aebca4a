"""Customers report a product whose code did not check out; its brand reads the reports.

A report goes to the brand the code names: the owner of the key id a forgery carries
(checked offline, as every scan is), or the registered unit's. The client never names a
brand, so a report cannot be sent to, nor read from, a brand the code does not name.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from transparency.db import reports as db
from transparency.domain import authenticity, cursors
from transparency.domain.errors import InvalidInput, NotFound
from transparency.domain.identity import Principal, Role
from transparency.domain.reports import Report, new_report
from transparency.services.context import Context


async def submit(
    ctx: Context,
    scan: str,
    *,
    place: str,
    region: str | None,
    note: str | None,
    photo: bytes | None,
) -> Report:
    """Store a customer's report on the product carrying ``scan`` (no key: a customer)."""
    scan = scan.strip()
    if not scan or len(scan) > 4096 or "\x00" in scan:
        raise InvalidInput("the code reported is missing or too long", field="code")
    report = new_report(place, region, note, photo)
    checked = authenticity.check(scan, ctx.keyring.get)
    return await db.insert(
        ctx.pool,
        uuid4(),
        code=checked.unit_key or scan,
        names_unit=checked.unit_key is not None,
        brand_id=checked.brand_id,
        reason=None if checked.reason is None else checked.reason.value,
        report=report,
    )


def _scope(actor: Principal) -> UUID | None:
    """The brand whose reports the caller reads: a brand key its own, an admin all."""
    actor.require(Role.BRAND, Role.ADMIN)
    return actor.brand_id if actor.role is Role.BRAND else None


async def list_reports(
    pool: asyncpg.Pool, actor: Principal, *, cursor: str | None, limit: int
) -> tuple[list[Report], str | None]:
    """A page of the caller's reports, newest first, and the next page's cursor, if any."""
    before = None if cursor is None else cursors.decode(cursor)
    page = await db.page(pool, _scope(actor), before=before, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return page, (cursors.encode(page[-1].created_at, page[-1].id) if more else None)


async def photo(pool: asyncpg.Pool, actor: Principal, report_id: UUID) -> tuple[bytes, str]:
    """A report's photo and its media type; another brand's is as missing as none."""
    found = await db.photo(pool, _scope(actor), report_id)
    if found is None:
        raise NotFound(f"no photo for report {report_id}")
    return found
