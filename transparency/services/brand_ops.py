"""Brand use cases after issuance: withdraw units, follow one unit, watch the brand (its
dashboard, the forged scans of its codes)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db import audit, scans
from transparency.db import brand_ops as db
from transparency.domain import authenticity, cursors
from transparency.domain.errors import InvalidInput, NotFound
from transparency.domain.forgeries import ForgedScan
from transparency.domain.identity import Principal, Role
from transparency.domain.lifecycle import UnitEvent, UnitState, next_state, states_allowing
from transparency.runtime.keyring import KeyRing

ACTIONS = {
    "revoke": UnitEvent.REVOKE,
    "recall": UnitEvent.RECALL,
    "destroy": UnitEvent.DESTROY,
    "report_stolen": UnitEvent.REPORT_STOLEN,
}


# What customers are shown of a withdrawal, as the API's body allows it (WithdrawIn).
MAX_REASON = 500
MAX_INSTRUCTIONS = 2000


def check_notice(action: str, reason: str, instructions: str | None) -> None:
    """Refuse a withdrawal's words that customers could not be shown: an unknown action, a
    reason missing or too long, instructions too long or given for anything but a recall.
    The console asks before its confirmation step; ``withdraw`` asks again."""
    if action not in ACTIONS:
        raise InvalidInput(f"choose one of: {', '.join(ACTIONS)}", field="action")
    if not reason.strip() or len(reason) > MAX_REASON or "\x00" in reason:
        raise InvalidInput(f"give a reason of 1 to {MAX_REASON} characters", field="reason")
    if instructions is None:
        return
    if action != "recall":
        raise InvalidInput("instructions go with a recall", field="instructions")
    if not instructions.strip() or len(instructions) > MAX_INSTRUCTIONS or "\x00" in instructions:
        raise InvalidInput(
            f"give instructions of 1 to {MAX_INSTRUCTIONS} characters", field="instructions"
        )


def _ending(event: UnitEvent) -> tuple[UnitState, frozenset[UnitState]]:
    """The one state an ending event leads to from every state that allows it, and those
    states: what a brand action's guarded update sets, and from where."""
    allowed = states_allowing(event)
    (end,) = {next_state(state, event) for state in allowed}
    return end, allowed


async def withdraw(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    actor: Principal,
    *,
    action: str,
    reason: str,
    code: str | None,
    batch_id: UUID | None,
    product_id: UUID | None,
    lot: str | None,
    instructions: str | None = None,
) -> int:
    """Revoke, recall, destroy or report stolen: a code, a batch, or a product's lot. A
    recall's ``instructions`` tell customers what to do (the brand profile's default
    recall instructions when it gives none)."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    targets = [code is not None, batch_id is not None, product_id is not None]
    if sum(targets) != 1 or (product_id is not None) != (lot is not None):
        raise InvalidInput("name one target: a code, a batch_id, or a product_id with a lot")
    check_notice(action, reason, instructions)
    end, allowed = _ending(ACTIONS[action])
    unit_key = (
        authenticity.unit_key_of(code, keyring.get, "no such unit") if code is not None else None
    )
    async with pool.acquire() as conn, conn.transaction():
        moved = await db.set_state(
            conn, brand_id=actor.brand_id, new_state=end, allowed_from=allowed, reason=reason,
            instructions=instructions, code=unit_key, batch_id=batch_id, product_id=product_id,
            lot=lot,
        )  # fmt: skip
        if moved is None:
            if unit_key is not None:
                raise NotFound("no such unit")
            raise NotFound(f"no batch {batch_id}" if batch_id else f"no product {product_id}")
        await audit.record(
            conn, api_key_id=actor.key_id, action=f"units.{action}", brand_id=actor.brand_id,
            target=unit_key or str(batch_id or f"{product_id}/{lot}"),
            detail={"reason": reason, "units": moved},
        )  # fmt: skip
    return moved


async def history(
    pool: asyncpg.Pool, keyring: KeyRing, actor: Principal, code: str
) -> dict[str, Any]:
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    unit_key = authenticity.unit_key_of(code, keyring.get, "no such unit")
    unit = await db.owned_unit(pool, actor.brand_id, unit_key)
    if unit is None:
        raise NotFound("no such unit")
    events = await scans.history(pool, unit_key)
    return {
        "code": unit_key,
        "state": unit.state.value,
        "status_reason": unit.status_reason,
        "suspicious": unit.suspicious_at is not None,
        "shipped_at": unit.shipped_at,
        "shipped_site_id": unit.shipped_site_id,
        "events": [asdict(e) for e in events],
    }


async def dashboard(
    pool: asyncpg.Pool, actor: Principal, brand_id: UUID, first: date | None, last: date | None
) -> dict[str, Any]:
    """The brand's counts per product and day (UTC) from ``first`` to ``last`` (the last 30
    days by default): issued, passed, blocked, customers' checks, suspicious units and
    customers' reports; and the forged scans of its codes, per day, site and region."""
    actor.require(Role.BRAND, Role.ADMIN)
    # The brand queried is the key's own (any brand for an admin's): a brand key naming
    # another brand finds nothing, and is told so as for a brand that does not exist.
    brand = brand_id if actor.role is Role.ADMIN else actor.brand_id
    if brand != brand_id:
        raise NotFound(f"no brand {brand_id}")
    last = last or date.today()
    # The last 30 days by default, from the calendar's first day at the earliest.
    first = first or last - timedelta(days=min(30, (last - date.min).days))
    if first > last or (last - first).days > 366:
        raise InvalidInput("the range must run forward and span at most a year", field="from")
    days = await db.dashboard(pool, brand, first, last)
    forged = await db.forged_counts(pool, brand, first, last)
    return {
        "brand_id": brand,
        "from": first,
        "to": last,
        "days": [asdict(d) for d in days],
        "forged": [asdict(f) for f in forged],
    }


async def forged_scans(
    pool: asyncpg.Pool,
    actor: Principal,
    *,
    since: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ForgedScan], str | None]:
    """A page of the forged scans of the caller's codes, newest first, and the cursor of
    the next page, if any. A forgery is the brand's when it names one of its key ids."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since needs a time zone (Z or +hh:mm)", field="since")
    before = None if cursor is None else cursors.decode(cursor)
    page = await db.forged_scans(
        pool, actor.brand_id, since=since or datetime.min.replace(tzinfo=UTC), before=before,
        limit=limit + 1,
    )  # fmt: skip
    more = len(page) > limit
    page = page[:limit]
    return page, (cursors.encode(page[-1].scanned_at, page[-1].id) if more else None)
