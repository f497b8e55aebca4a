"""GTIN validation. Products are keyed by GTIN-14; shorter GTINs are zero-padded."""

from __future__ import annotations

from functools import lru_cache

from biip import ParseError
from biip.gtin import Gtin

from transparency.domain.errors import InvalidGtin


@lru_cache(maxsize=4096)  # a station ships few products, each checked on every scan
def normalize_gtin(value: str, *, field: str = "gtin") -> str:
    """Return the GTIN-14 form of a GTIN-8/12/13/14, or raise InvalidGtin."""
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise InvalidGtin(f"GTIN must be 8, 12, 13 or 14 digits, got {value!r}", field=field)
    try:
        return Gtin.parse(text).as_gtin_14()
    except ParseError as exc:
        raise InvalidGtin(str(exc), field=field) from exc
