"""A customer's report of a product whose code did not check out, for the brand to read.

Nothing personal is asked for: where the product was bought (a shop's name or a web
address), an optional photo, an optional region and an optional note; a customer who types
a name or an address into them chose to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from transparency.domain.errors import InvalidInput, PayloadTooLarge, UnreadableImage

# A phone's photo, as its share sheet or a browser sends it, is 1-5 MB; the report keeps it
# as sent, so a larger one is refused rather than stored.
MAX_PHOTO_BYTES = 5_000_000
MAX_PLACE = 500
MAX_NOTE = 2000

_REGION = re.compile(r"[A-Z]{2}")

# The photo formats a phone sends, by their first bytes: the brand's browser is told this
# type (with nosniff), never the one the client claimed.
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


@dataclass(frozen=True, slots=True)
class Report:
    id: UUID
    brand_id: UUID | None  # None when the code names no brand: operators alone see it
    code: str  # the unit key when the code names a unit, else the text as scanned
    reason: str | None  # why the check refused the code (forged, unknown, ...)
    unit_state: str | None  # the unit's state when reported
    place: str
    region: str | None
    note: str | None
    photo_type: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewReport:
    """A report as the customer sent it, validated."""

    place: str
    region: str | None
    note: str | None
    photo: bytes | None
    photo_type: str | None


def photo_type(data: bytes) -> str:
    for magic, media_type in _SIGNATURES:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise UnreadableImage("the photo must be a JPEG, PNG or WebP image", field="photo")


def new_report(place: str, region: str | None, note: str | None, photo: bytes | None) -> NewReport:
    """The report, or InvalidInput naming the first field that is wrong."""
    place = place.strip()
    if not place or len(place) > MAX_PLACE:
        raise InvalidInput(
            f"say where it was bought: a shop's name or a web address, at most {MAX_PLACE}"
            " characters",
            field="place",
        )
    region = (region or "").strip().upper() or None
    if region is not None and not _REGION.fullmatch(region):
        raise InvalidInput("region is an ISO 3166 code of two letters", field="region")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is at most {MAX_NOTE} characters", field="note")
    if any("\x00" in text for text in (place, note or "")):
        raise InvalidInput("text may not contain NUL characters", field="place")
    if not photo:
        return NewReport(place, region, note, None, None)
    if len(photo) > MAX_PHOTO_BYTES:
        raise PayloadTooLarge(f"the photo is over {MAX_PHOTO_BYTES} bytes")
    return NewReport(place, region, note, photo, photo_type(photo))
