"""Forged scans a brand sees: codes naming one of its key ids with a wrong tag or signature.

A forgery that names a real key id is an attack on that brand's codes (someone printing
lookalikes, or guessing), so it is recorded with the brand's id; one naming no key of ours
belongs to no brand. The brand lists them and its dashboard counts them by day, site and
region.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class ForgedScan:
    """One forged scan, as the brand lists it."""

    id: UUID
    scanned_at: datetime
    scanned: str  # the text as scanned (at most 200 characters)
    kind: str  # 'fulfilment' (a station's check) or 'customer'
    site_id: UUID | None  # the station's site, at fulfilment
    region: str | None  # the customer's coarse region, or the site's


@dataclass(frozen=True, slots=True)
class ForgedCount:
    """Forged scans of a brand's codes on one day, at one site or in one region."""

    day: date
    kind: str
    site_id: UUID | None
    site_name: str | None
    region: str | None
    scans: int
