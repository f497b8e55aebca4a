"""What a check answers: fulfilment reasons, customer verdicts and warnings, clone rules.

A fulfilment check passes or fails with one stable reason. A customer check gives a verdict
and warnings; a code whose customer scans cross the clone thresholds (how many, from how
many regions, how many since it shipped) turns suspicious. A unit no station ever shipped
is normal for a product sold through shops (``Channel.ANY``); only for a product sold
through checked fulfilment alone is its customer check a clone signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from transparency.domain.lifecycle import UnitState


class Reason(StrEnum):
    MALFORMED = "malformed"  # not a code of any format we read
    FORGED = "forged"  # tag or signature wrong, or a key we never issued
    UNKNOWN = "unknown"  # well-formed, not registered (or its batch is not finished)
    WRONG_PRODUCT = "wrong_product"  # a real unit of another product
    ALREADY_SHIPPED = "already_shipped"  # claimed before: the counterfeit signal
    REVOKED = "revoked"  # revoked, destroyed or reported stolen by the brand
    RECALLED = "recalled"
    KEY_REVOKED = "key_revoked"  # signed by a key the brand revoked as compromised
    NOT_ACTIVE = "not_active"  # returned and not restocked
    MISSING_CODE = "missing_code"  # nothing scanned for a product that must be checked


# The unit states that block a claim, with the reason each gives.
BLOCKING_STATES: dict[UnitState, Reason] = {
    UnitState.SHIPPED: Reason.ALREADY_SHIPPED,
    UnitState.REVOKED: Reason.REVOKED,
    UnitState.DESTROYED: Reason.REVOKED,
    UnitState.STOLEN: Reason.REVOKED,
    UnitState.RECALLED: Reason.RECALLED,
    UnitState.RETURNED: Reason.NOT_ACTIVE,
}


class Verdict(StrEnum):
    """A customer check's answer; only ``authentic`` is drawn green."""

    AUTHENTIC = "authentic"
    SUSPICIOUS = "suspicious"  # real code, but its scans look like copies in circulation
    NOT_AUTHENTIC = "not_authentic"  # not a code we issued or registered
    REVOKED = "revoked"  # the brand withdrew it (revoked, stolen, destroyed, key revoked)
    RECALLED = "recalled"  # genuine, but the brand recalled it: stop using it
    EXPIRED = "expired"  # genuine, but past its expiry date


class Channel(StrEnum):
    """How a product reaches its customers, which says what an unshipped unit means."""

    ANY = "any"  # shops and channels with no station: most units are never shipped by us
    CHECKED_ONLY = "checked_only"  # every genuine unit passes a station before it is sold


class Warning(StrEnum):
    SCANNED_MANY_TIMES = "scanned_many_times"
    MANY_REGIONS = "many_regions"
    # No station shipped it (yet), and its product is sold through checked fulfilment only:
    # a customer holding it holds a copy of a label still in a warehouse. Named
    # ``already_used`` before 0.x: it never meant the unit was used.
    NOT_SHIPPED = "not_shipped"
    # A real owner checks a few times; many checks after shipment mean copies of the label.
    SCANNED_AFTER_SHIPPING = "scanned_after_shipping"
    EXPIRED = "expired"
    RECALLED = "recalled"


CLONE_SIGNALS = frozenset(
    {
        Warning.SCANNED_MANY_TIMES,
        Warning.MANY_REGIONS,
        Warning.NOT_SHIPPED,
        Warning.SCANNED_AFTER_SHIPPING,
    }
)


@dataclass(frozen=True, slots=True)
class CloneThresholds:
    max_scans: int = 20
    max_regions: int = 3
    max_scans_after_shipping: int = 5


@dataclass(frozen=True, slots=True)
class ScanHistory:
    """What the customer-scan record says about one unit, this scan included: counters kept
    on the unit by the statements that record its scans, so a check costs the same whatever
    the code's history (``regions`` counts distinct ISO 3166 codes: at most 676)."""

    customer_scans: int
    regions: int
    scans_after_shipping: int  # since the unit last shipped; 0 while it is not shipped


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a claim decided about one unit key, with the unit's facts when it is registered
    (every field but ``reason`` is None for an unknown code)."""

    reason: Reason | None  # None: it passes
    state: UnitState | None  # as found, before this claim
    gtin: str | None
    name: str | None
    lot: str | None
    expiry: date | None
    product_id: UUID | None
    brand_id: UUID | None
    shipped_at: datetime | None  # this claim's time when it shipped the unit now
    shipped_site_id: UUID | None


@dataclass(frozen=True, slots=True)
class StoredReply:
    """The first answer to an Idempotency-Key, with the SHA-256 of the request it answered
    (None for a reply stored before keys were bound to their requests): the reply as sent,
    or the claim it was made from; neither while that request is being answered."""

    request_sha256: bytes | None
    reply: dict[str, Any] | None
    claimed: Claimed | None


@dataclass(frozen=True, slots=True)
class BrandFace:
    """What a customer sees of a brand: its profile, with its name where it set none."""

    id: UUID
    name: str
    logo_url: str | None
    support: str | None  # an https URL or an e-mail address
    recall_instructions: str | None


@dataclass(frozen=True, slots=True)
class CustomerScan:
    """A registered unit as a customer's scan finds it, with the code's scan history."""

    state: UnitState
    lot: str | None
    expiry: date | None
    shipped_at: datetime | None
    suspicious_at: datetime | None
    gtin: str
    name: str
    image_url: str | None
    brand: BrandFace
    attributes: dict[str, Any]  # the product's, overridden key by key by the batch's
    history: ScanHistory
    channel: Channel
    status_reason: str | None  # the brand's, when it withdrew or recalled the unit
    status_instructions: str | None  # a recall's own instructions, if it gave any


def customer_warnings(
    state: UnitState,
    expiry: date | None,
    history: ScanHistory,
    thresholds: CloneThresholds,
    today: date,
    channel: Channel = Channel.ANY,
) -> list[Warning]:
    warnings = []
    if history.customer_scans > thresholds.max_scans:
        warnings.append(Warning.SCANNED_MANY_TIMES)
    if history.regions > thresholds.max_regions:
        warnings.append(Warning.MANY_REGIONS)
    if history.scans_after_shipping > thresholds.max_scans_after_shipping:
        warnings.append(Warning.SCANNED_AFTER_SHIPPING)
    if state is UnitState.ACTIVE and channel is Channel.CHECKED_ONLY:
        warnings.append(Warning.NOT_SHIPPED)
    if expiry is not None and expiry < today:
        warnings.append(Warning.EXPIRED)
    if state is UnitState.RECALLED:
        warnings.append(Warning.RECALLED)
    return warnings


def customer_verdict(state: UnitState, warnings: list[Warning], key_revoked: bool) -> Verdict:
    if key_revoked or state in (UnitState.REVOKED, UnitState.STOLEN, UnitState.DESTROYED):
        return Verdict.REVOKED
    # A recall is about the customer's safety: it is said even over a clone signal.
    if state is UnitState.RECALLED:
        return Verdict.RECALLED
    if CLONE_SIGNALS.intersection(warnings):
        return Verdict.SUSPICIOUS
    if Warning.EXPIRED in warnings:
        return Verdict.EXPIRED
    return Verdict.AUTHENTIC
