"""A station killed between sending a claim and recording its answer, run as a real
process against a fake API: after a restart every code is claimed exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

from scanner.claims import ClaimQueue
from tests.support.station import CODES, FakeApi, drop_photo, sent, start_station, stop, wait_for


def test_a_station_killed_mid_way_claims_every_code_once_after_a_restart(tmp_path: Path) -> None:
    photos, queue_path, log = tmp_path / "photos", tmp_path / "queue.sqlite3", tmp_path / "log"
    photos.mkdir()
    with FakeApi(delay=0.3) as api:
        for n, code in enumerate(CODES[:5]):
            drop_photo(photos, f"{n:03}.png", code)
        first = start_station(api, photos, queue_path, log)
        try:
            # Killed while the second claim is in flight: the API has claimed the unit, the
            # station has not recorded the answer.
            wait_for(lambda: len(api.claims) >= 2, 10, "two claims to arrive")
            first.send_signal(signal.SIGKILL)
        finally:
            stop(first)
        assert first.returncode == -signal.SIGKILL
        for n, code in enumerate(CODES[5:], start=5):
            drop_photo(photos, f"{n:03}.png", code)

        second = start_station(api, photos, queue_path, log)
        try:
            wait_for(lambda: sent(queue_path) == len(CODES), 15, "every claim to be answered")
            second.send_signal(signal.SIGINT)
            assert second.wait(10) == 0, log.read_text()
        finally:
            stop(second)

    keys_in_order = list(dict.fromkeys(key for key, _ in api.claims))
    scan_of = dict(api.claims)
    assert len(keys_in_order) == len(CODES)  # one key per code, whatever was sent again
    assert [scan_of[key] for key in keys_in_order] == [f"]Q1{code}" for code in CODES]
    assert all(scan == scan_of[key] for key, scan in api.claims)
    assert any(count > 1 for count in map([k for k, _ in api.claims].count, keys_in_order))
    with ClaimQueue(queue_path) as queue:
        claims = queue.claims()
    assert [c.idempotency_key for c in claims] == keys_in_order
    assert all(c.passed for c in claims)
    assert "PASS " + CODES[-1] in log.read_text()
