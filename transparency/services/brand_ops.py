"""Brand use cases after issuance: withdraw units, follow one unit, watch the brand."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from transparency.db import audit, batches, products, scans
from transparency.db import brand_ops as db
from transparency.domain import authenticity
from transparency.domain.errors import InvalidInput, NotFound
from transparency.domain.identity import Principal, Role
from transparency.domain.lifecycle import UnitEvent, states_allowing
from transparency.domain.verification import Reason
from transparency.runtime.keyring import KeyRing

ACTIONS = {
    "revoke": UnitEvent.REVOKE,
    "recall": UnitEvent.RECALL,
    "destroy": UnitEvent.DESTROY,
    "report_stolen": UnitEvent.REPORT_STOLEN,
}
_END_STATES = {
    UnitEvent.REVOKE: "revoked",
    UnitEvent.RECALL: "recalled",
    UnitEvent.DESTROY: "destroyed",
    UnitEvent.REPORT_STOLEN: "stolen",
}


def unit_key_of(keyring: KeyRing, scan: str) -> str:
    checked = authenticity.check(scan, keyring.get)
    if checked.unit_key is None:
        raise NotFound(f"no such unit ({(checked.reason or Reason.MALFORMED).value})")
    return checked.unit_key


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
) -> int:
    """Revoke, recall, destroy or report stolen: a code, a batch, or a product's lot."""
    actor.require(Role.BRAND)
    assert actor.brand_id is not None
    targets = [code is not None, batch_id is not None, product_id is not None]
    if sum(targets) != 1 or (product_id is not None) != (lot is not None):
        raise InvalidInput("name one target: a code, a batch_id, or a product_id with a lot")
    event = ACTIONS[action]
    unit_key = unit_key_of(keyring, code) if code is not None else None
    async with pool.acquire() as conn, conn.transaction():
        if unit_key is not None and await scans.unit_brand(conn, unit_key) != actor.brand_id:
            raise NotFound("no such unit")
        if batch_id is not None:
            batch = await batches.get(conn, batch_id)
            if batch is None or batch["brand_id"] != actor.brand_id:
                raise NotFound(f"no batch {batch_id}")
        if product_id is not None:
            product = await products.get(conn, product_id)
            if product is None or product.brand_id != actor.brand_id:
                raise NotFound(f"no product {product_id}")
        moved = await db.set_state(
            conn,
            brand_id=actor.brand_id,
            new_state=_END_STATES[event],
            allowed_from=[s.value for s in states_allowing(event)],
            reason=reason,
            code=unit_key,
            batch_id=batch_id,
            product_id=product_id,
            lot=lot,
        )
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
    unit_key = unit_key_of(keyring, code)
    unit = await db.unit(pool, unit_key)
    if unit is None or unit["brand_id"] != actor.brand_id:
        raise NotFound("no such unit")
    events = await scans.history(pool, unit_key)
    return {
        "code": unit_key,
        "state": unit["state"],
        "status_reason": unit["status_reason"],
        "suspicious": unit["suspicious_at"] is not None,
        "shipped_at": unit["shipped_at"],
        "shipped_site_id": unit["shipped_site_id"],
        "events": [dict(e) for e in events],
    }


async def dashboard(
    pool: asyncpg.Pool, actor: Principal, brand_id: UUID, first: date | None, last: date | None
) -> dict[str, Any]:
    actor.require(Role.BRAND, Role.ADMIN)
    if actor.role is Role.BRAND and actor.brand_id != brand_id:
        raise NotFound(f"no brand {brand_id}")
    last = last or date.today()
    # The last 30 days by default, from the calendar's first day at the earliest.
    first = first or last - timedelta(days=min(30, (last - date.min).days))
    if first > last or (last - first).days > 366:
        raise InvalidInput("the range must run forward and span at most a year", field="from")
    rows = await db.dashboard(pool, brand_id, first, last)
    return {
        "brand_id": brand_id,
        "from": first,
        "to": last,
        "days": [dict(r) for r in rows],
    }
