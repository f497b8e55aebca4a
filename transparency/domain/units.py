"""A unit as the database holds it, and the scan events that make up its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from transparency.domain.lifecycle import UnitState


@dataclass(frozen=True, slots=True)
class Unit:
    code: str  # the unit key: what every format of its code resolves to
    brand_id: UUID
    product_id: UUID
    batch_id: UUID
    state: UnitState
    lot: str | None
    expiry: date | None
    shipped_at: datetime | None
    shipped_site_id: UUID | None
    shipment_id: str | None
    suspicious_at: datetime | None
    status_reason: str | None  # the brand's words when it ended the unit's life


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """One scan of a unit's code: a fulfilment check, a customer scan, a reversal..."""

    scanned_at: datetime
    kind: str
    result: str
    reason: str | None
    site_id: UUID | None
    shipment_id: str | None
    region: str | None
