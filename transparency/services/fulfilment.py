"""Station use cases: claim units at fulfilment, undo a claim, take returns back.

Every check runs the offline test first (malformed, forged, key revoked: no query), then
one claim statement for everything that remains. A retry with the same Idempotency-Key,
or of the same code for the same shipment from the same site, gets the first answer; the
same key with another request is refused (a key names one request, as at payment APIs).
A reversal, a return and a restock all obey the lifecycle's take-back rules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from transparency.db import products as db_products
from transparency.db import scans
from transparency.db.pool import Conn
from transparency.domain import authenticity, lifecycle
from transparency.domain.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    NotFound,
    ReversalRefused,
)
from transparency.domain.gtin import normalize_gtin
from transparency.domain.identity import Principal, Role
from transparency.domain.lifecycle import UnitEvent, UnitState
from transparency.domain.units import Unit
from transparency.domain.verification import Claimed, Reason, StoredReply
from transparency.services.context import Context


@dataclass(frozen=True, slots=True)
class Claim:
    scan: str
    gtin: str


def _reply(claimed: Claimed | None, reason: Reason | None) -> dict[str, Any]:
    result = "pass" if reason is None else "fail"
    unit = None
    first = None
    if claimed is not None and claimed.product_id is not None:
        unit = {
            "gtin": claimed.gtin,
            "product": claimed.name,
            "lot": claimed.lot,
            "expiry": claimed.expiry.isoformat() if claimed.expiry else None,
        }
        if reason is Reason.ALREADY_SHIPPED:  # a pass names no first shipment
            site = claimed.shipped_site_id
            first = {
                "at": claimed.shipped_at.isoformat() if claimed.shipped_at else None,
                "site_id": str(site) if site else None,
            }
    return {
        "result": result,
        "reason": None if reason is None else reason.value,
        "unit": unit,
        "first_shipped": first,
    }


def _offline_fail(
    ctx: Context,
    actor: Principal,
    code: str,
    reason: Reason,
    shipment_id: str,
    *,
    brand_id: UUID | None = None,
    product_id: UUID | None = None,
) -> dict[str, Any]:
    """Refuse a scan without a query; its event is buffered. ``brand_id`` when the refusal
    can be laid at a brand's door (its revoked key, its product scanned without a code, a
    forgery naming its key id), so the brand's dashboard counts it; garbage, and a forgery
    naming no key of ours, belong to no brand."""
    ctx.events.add(
        code, "fulfilment", "fail", reason.value, brand_id=brand_id, product_id=product_id,
        site_id=actor.site_id, api_key_id=actor.key_id, shipment_id=shipment_id,
    )  # fmt: skip
    return _reply(None, reason)


async def verify_many(
    ctx: Context,
    actor: Principal,
    claims: list[Claim],
    shipment_id: str,
    conn: Conn | None = None,
) -> list[dict[str, Any]]:
    """One reply per claim, in order; the database is asked once for all the codes (and
    once more for a tote's empty scans, if it has any)."""
    actor.require(Role.STATION)
    assert actor.site_id is not None
    replies: list[dict[str, Any] | None] = [None] * len(claims)
    to_claim: list[tuple[int, str, str]] = []
    empty: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    key_of = await ctx.keyring.current(ctx.pool)
    for i, item in enumerate(claims):
        gtin = normalize_gtin(item.gtin, field=f"items[{i}].gtin")
        if not item.scan.strip():
            empty.append((i, gtin))
            continue
        checked = authenticity.check(item.scan, key_of)
        if checked.reason is not None or checked.unit_key is None:
            reason = checked.reason or Reason.MALFORMED
            code = checked.unit_key or item.scan.strip()
            replies[i] = _offline_fail(
                ctx, actor, code, reason, shipment_id, brand_id=checked.brand_id
            )
            continue
        if checked.unit_key in seen:  # the same unit twice in one tote: the second is a copy
            replies[i] = {"duplicate_of": seen[checked.unit_key]}
            continue
        seen[checked.unit_key] = i
        to_claim.append((i, checked.unit_key, gtin))
    if empty:
        await _without_code(ctx, actor, empty, shipment_id, replies)
    answers: list[Claimed] = []
    if len(to_claim) == 1:  # a station's everyday single check
        ((_, code, gtin),) = to_claim
        site, key = actor.site_id, actor.key_id
        if conn is None:  # with other stations' claims of the moment, if any wait
            claimed = await ctx.claims.claim(
                code, gtin, site_id=site, api_key_id=key, shipment_id=shipment_id
            )
        else:  # in the caller's transaction
            claimed = await scans.claim_one(
                conn, code, gtin, site_id=site, api_key_id=key, shipment_id=shipment_id
            )
        answers = [claimed]
    elif to_claim:
        answers = await scans.claim(
            ctx.pool,
            [(code, gtin) for _, code, gtin in to_claim],
            site_id=actor.site_id,
            api_key_id=actor.key_id,
            shipment_id=shipment_id,
        )
    shipped_at: dict[int, datetime] = {}
    for (i, _, _), claimed in zip(to_claim, answers, strict=True):
        replies[i] = _reply(claimed, claimed.reason)
        if claimed.reason is None and claimed.shipped_at is not None:
            shipped_at[i] = claimed.shipped_at
    final: list[dict[str, Any]] = []
    for reply in replies:
        assert reply is not None
        if "duplicate_of" in reply:
            index = reply["duplicate_of"]
            first = replies[index]
            assert first is not None
            reply = {**first, "result": "fail", "reason": Reason.ALREADY_SHIPPED.value}
            if first["result"] == "pass":  # shipped a moment ago, by this very tote
                at = shipped_at.get(index)
                reply["first_shipped"] = {
                    "at": at.isoformat() if at else None,
                    "site_id": str(actor.site_id),
                }
        final.append(reply)
    return final


async def _without_code(
    ctx: Context,
    actor: Principal,
    empty: list[tuple[int, str]],
    shipment_id: str,
    replies: list[dict[str, Any] | None],
) -> None:
    """Decide the empty scans: a product that must be checked fails ``missing_code``."""
    products = await db_products.by_gtins(ctx.pool, sorted({gtin for _, gtin in empty}))
    for i, gtin in empty:
        product = products.get(gtin)
        if product is None or product.requires_check:
            replies[i] = _offline_fail(
                ctx, actor, "", Reason.MISSING_CODE, shipment_id,
                brand_id=product.brand_id if product else None,
                product_id=product.id if product else None,
            )  # fmt: skip
        else:
            replies[i] = _reply(None, None)


async def verify_one(
    ctx: Context,
    actor: Principal,
    claim: Claim,
    shipment_id: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Check and claim one unit. Under an Idempotency-Key, the key is bound to this
    request by the statement that claims (or, for a refusal, before the reply), as payment
    APIs do: a retry gets the first reply, another request under the key 422, and one sent
    while the first is being answered waits for it and gets its reply; so no two requests
    ever claim under one key."""
    actor.require(Role.STATION)
    if not idempotency_key:
        (reply,) = await verify_many(ctx, actor, [claim], shipment_id)
        return reply
    request = _fingerprint(claim, shipment_id)
    gtin = normalize_gtin(claim.gtin, field="items[0].gtin")
    checked = authenticity.check(claim.scan, await ctx.keyring.current(ctx.pool))
    if claim.scan.strip() and checked.reason is None and checked.unit_key is not None:
        assert actor.site_id is not None
        wanted = scans.Wanted(
            checked.unit_key, gtin, actor.site_id, actor.key_id, shipment_id, idempotency_key,
            request,
        )  # fmt: skip
        # With other stations' claims of the moment, if any wait.
        claimed = await ctx.claims.claim_keyed(wanted)
        if claimed is not None:  # the key was free: it now holds this claim
            return _reply(claimed, claimed.reason)
    # A retry, another request under a taken key, or a scan refused without a query (which
    # claims nothing, so its reply is stored in its place). Reservation, answer and stored
    # reply commit together. Committed apart, a primary lost between them (a failover,
    # found by tests/cluster) left a reservation without a reply: the retry got 409 for
    # _RESERVATION_SECONDS though the unit may have shipped. Now a lost transaction takes
    # its reservation with it, and a concurrent request with the same key waits on the
    # reservation's row and then replays the reply.
    async with ctx.pool.acquire() as conn, conn.transaction():
        held = await scans.reserve_reply(
            conn, actor.key_id, idempotency_key, request, _RESERVATION_SECONDS
        )
        if held is not None:
            return _replay(held, request)
        (reply,) = await verify_many(ctx, actor, [claim], shipment_id, conn)
        stands = await scans.store_reply(conn, actor.key_id, idempotency_key, reply)
    return _replay(stands, request)


# A reservation with no reply after this long was left by a process that died (a claim
# gives up well within it: statement and pool timeouts), and the same request takes it over.
_RESERVATION_SECONDS = 120.0


def _fingerprint(claim: Claim, shipment_id: str) -> bytes:
    """SHA-256 of the request as sent (its operation and every field of its body): a retry
    resends the same bytes, so nothing is normalised and any difference is another request."""
    canonical = json.dumps(["fulfilment.verify", claim.scan, claim.gtin, shipment_id])
    return hashlib.sha256(canonical.encode()).digest()


def _replay(stored: StoredReply, request: bytes) -> dict[str, Any]:
    """The stored reply, if it answered this very request. A reply stored before keys were
    bound to requests (no fingerprint) is given back as it was then."""
    if stored.request_sha256 is not None and stored.request_sha256 != request:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was sent with another request; a new request needs a new key"
        )
    if stored.claimed is not None:
        return _reply(stored.claimed, stored.claimed.reason)
    if stored.reply is None:
        raise IdempotencyKeyInUse(
            "a request under this Idempotency-Key is being answered; retry shortly"
        )
    return dict(stored.reply)


async def reverse(
    ctx: Context, actor: Principal, scan: str, shipment_id: str, window: timedelta
) -> dict[str, Any]:
    """Undo a pass: the unit goes back on the shelf (same site, shipment, within the window)."""
    actor.require(Role.STATION)
    unit_key = _unit_key(ctx, scan)
    # The unit's row is locked while its rules are checked and its move recorded: two
    # stations taking one unit back at once are answered one after the other.
    async with ctx.pool.acquire() as conn, conn.transaction():
        unit = await _locked_unit(conn, unit_key)
        if unit.state is not UnitState.SHIPPED:
            raise ReversalRefused(f"the unit is {unit.state.value}, not shipped")
        state = _taken_back(actor, unit, UnitEvent.REVERSE, shipment_id, window)
        await scans.move(
            conn, unit_key, state, kind="reversal", site_id=actor.site_id,
            api_key_id=actor.key_id, shipment_id=shipment_id, brand_id=unit.brand_id,
            product_id=unit.product_id, clear_shipment=True,
        )  # fmt: skip
    return {"code": unit_key, "state": state.value}


async def take_back(
    ctx: Context,
    actor: Principal,
    scan: str,
    event: UnitEvent,
    shipment_id: str,
    window: timedelta,
) -> dict[str, Any]:
    """A customer return (shipped -> returned) or a restock after inspection (-> active),
    by the site that shipped the unit, naming its shipment, within the window."""
    actor.require(Role.STATION)
    unit_key = _unit_key(ctx, scan)
    # The unit's row is locked while its rules are checked and its move recorded: two
    # stations taking one unit back at once are answered one after the other.
    async with ctx.pool.acquire() as conn, conn.transaction():
        unit = await _locked_unit(conn, unit_key)
        state = _taken_back(actor, unit, event, shipment_id, window)
        await scans.move(
            conn, unit_key, state, kind="return" if event is UnitEvent.RETURN else "restock",
            site_id=actor.site_id, api_key_id=actor.key_id, shipment_id=shipment_id,
            brand_id=unit.brand_id, product_id=unit.product_id,
            clear_shipment=event is UnitEvent.RESTOCK,
        )  # fmt: skip
    return {"code": unit_key, "state": state.value}


def _taken_back(
    actor: Principal, unit: Unit, event: UnitEvent, shipment_id: str, window: timedelta
) -> UnitState:
    assert actor.site_id is not None  # a station key has its site
    passed = lifecycle.Pass(unit.shipped_site_id, unit.shipment_id, unit.shipped_at)
    request = lifecycle.TakeBack(actor.site_id, shipment_id, datetime.now(UTC), window)
    return lifecycle.take_back(unit.state, event, passed, request)


async def _locked_unit(conn: Conn, unit_key: str) -> Unit:
    """The registered unit, locked for the caller's transaction, or NotFound."""
    unit = await scans.unit_for_update(conn, unit_key)
    if unit is None:
        raise NotFound("no such unit")
    return unit


def _unit_key(ctx: Context, scan: str) -> str:
    return authenticity.unit_key_of(scan, ctx.keyring.get, "not a unit of ours")
