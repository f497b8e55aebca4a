"""Page cursors: a row's keyset position (its time, or a text key, then its id), opaque to
the caller, who passes it back for the next page."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from transparency.domain.errors import InvalidInput


def encode(at: datetime, ident: UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{ident}".encode()).decode()


def decode(cursor: str) -> tuple[datetime, UUID]:
    """The position ``encode`` wrote; InvalidInput for anything it did not write."""
    try:
        at, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:  # every time this service gives out carries its zone
            raise ValueError(at)
        return when, UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this service gave out", field="cursor") from None


def encode_key(key: str, ident: UUID) -> str:
    """The position of a row in a list ordered by a text key, then by id."""
    return base64.urlsafe_b64encode(f"{ident}|{key}".encode()).decode()


def decode_key(cursor: str) -> tuple[str, UUID]:
    """The position ``encode_key`` wrote (the key may hold any character, ``|`` too)."""
    try:
        ident, bar, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        if not bar or "\x00" in key:
            raise ValueError(cursor)
        return key, UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this service gave out", field="cursor") from None
