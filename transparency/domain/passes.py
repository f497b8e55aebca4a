"""Passes at fulfilment as a station reads them back: which units left in which shipments.

A load test, or a warehouse reconciling its day, names its shipments with a common prefix
(``lt-<run>-``) and asks for the passes recorded under it. A prefix is a range of the
shipments' index in code-point order (``range_of``), so a short one would walk a site's
whole history: it must be at least ``MIN_PREFIX`` characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from transparency.domain.errors import InvalidInput, ShipmentPrefixTooShort

# "lt-" plus one character of a run id: the shortest prefix naming a run rather than every
# load test the site ever made.
MIN_PREFIX = 4
_LAST = 0x10FFFF  # the highest code point
_SURROGATES = range(0xD800, 0xE000)  # no UTF-8 text holds these, so PostgreSQL none


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass event: a unit claimed for a shipment at the caller's site."""

    id: UUID
    code: str  # the unit key (a Transparency code's canonical text, a GS1 "(01)...(21)...")
    shipment_id: str
    passed_at: datetime


@dataclass(frozen=True, slots=True)
class PassCount:
    """Passes under a prefix: events from the event log, units and shipments distinct, so a
    unit passed twice (passed, reversed, passed again) shows as more events than units.

    A check of a unit already passed for the same shipment at the same site (a retry) is
    answered pass and logged as a pass event again, though the unit moved once: a unit that
    left in two shipments has more ``unit_shipments`` than ``units``; a retry does not."""

    pass_events: int
    units: int
    shipments: int
    unit_shipments: int  # distinct (unit, shipment) pairs


def range_of(prefix: str) -> tuple[str, str | None]:
    """The half-open range [low, high) of every text starting with ``prefix``, in code-point
    order (PostgreSQL's "C" collation of UTF-8 text); high is None when nothing is above."""
    if "\x00" in prefix:
        raise InvalidInput("text may not contain NUL characters", field="shipment_prefix")
    if len(prefix) < MIN_PREFIX:
        raise ShipmentPrefixTooShort(
            f"shipment_prefix must be at least {MIN_PREFIX} characters (it was {len(prefix)}):"
            " a shorter one would read every shipment of the site",
            field="shipment_prefix",
        )
    high = prefix.rstrip(chr(_LAST))
    if not high:
        return prefix, None
    following = ord(high[-1]) + 1
    if following in _SURROGATES:
        following = _SURROGATES.stop
    return prefix, high[:-1] + chr(following)
