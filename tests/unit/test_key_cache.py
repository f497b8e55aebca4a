"""The API-key cache trusts an entry only for its bound after the database vouched for it,
so a revocation whose notification was lost still holds within that bound."""

from __future__ import annotations

import time

from transparency.domain.identity import Principal, Role
from transparency.services.auth import KeyCache

STATION = Principal(key_id="k1", role=Role.STATION, brand_id=None, site_id=None)


def test_an_entry_is_served_within_its_bound() -> None:
    cache = KeyCache(max_age=5)
    cache.put("k1", b"d" * 32, STATION, checked_at=time.monotonic())
    assert cache.get("k1") == (b"d" * 32, STATION)


def test_an_entry_older_than_its_bound_is_looked_up_again() -> None:
    cache = KeyCache(max_age=5)
    cache.put("k1", b"d" * 32, STATION, checked_at=time.monotonic() - 6)
    assert cache.get("k1") is None


def test_forget_and_clear_drop_entries() -> None:
    cache = KeyCache(max_age=5)
    now = time.monotonic()
    cache.put("k1", b"d" * 32, STATION, checked_at=now)
    cache.put("k2", b"e" * 32, STATION, checked_at=now)
    cache.forget("k1")
    assert cache.get("k1") is None
    assert cache.get("k2") is not None
    cache.clear()
    assert cache.get("k2") is None
