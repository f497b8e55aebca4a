"""Hostile photos and dead decoders against a real `transparency serve`: each costs the
sender a refusal (422, 503), never the photo service or a CPU past the time limit, and the
service stays ready throughout.

Before: a 200 KB JPEG repeating its last scan 1,000 times kept a decoder busy for 40 s
after its 422, a decoder killed with kill -9 left every photo answered 500 until a restart,
and a 103-byte 10000x2 PNG was a 500.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from shutil import rmtree

import httpx
import psutil
import pytest

from tests.support.database import pg_home
from tests.support.paths import DATA
from tests.support.photos import (
    blank_png,
    gone,
    progressive_jpeg,
    sliver_png,
    slow_jpeg,
    spawned_by,
    with_last_scan_repeated,
)
from tests.support.served import Served, free_port

TIME_LIMIT = 1.0  # seconds a photo may take to decode, given to serve below


@pytest.fixture(scope="module")
def service() -> Iterator[Served]:
    home = pg_home()
    served = Served(
        home / "data",
        free_port(),
        TRANSPARENCY_WORKERS="1",  # serve is the API process: its workers are decoders
        TRANSPARENCY_SCAN_WORKERS="2",
        TRANSPARENCY_SCAN_TIMEOUT_SECONDS=str(TIME_LIMIT),
        TRANSPARENCY_LOG_LEVEL="ERROR",
    )
    try:
        served.wait_ready()
        yield served
    finally:
        if served.proc.poll() is None:
            served.stop()
        rmtree(home, ignore_errors=True)


@pytest.fixture
def http(service: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60) as client:
        yield client


def photo(http: httpx.Client, content: bytes) -> httpx.Response:
    return http.post("/v1/scans", files={"image": ("photo", content)})


def still_serving(http: httpx.Client) -> None:
    assert http.get("/readyz").status_code == 200
    assert photo(http, blank_png()).json() == {"codes": []}


def api_decoders(service: Served) -> list[psutil.Process]:
    found = spawned_by(service.proc.pid)  # one API process: serve is it
    assert found, "no decoder process under serve"
    return found


def test_a_decoder_killed_with_kill_9_is_replaced(service: Served, http: httpx.Client) -> None:
    still_serving(http)
    killed = api_decoders(service)
    for process in killed:
        process.send_signal(signal.SIGKILL)
    for _ in range(3):
        still_serving(http)
    assert all(gone(process) for process in killed)


def test_a_phone_sized_photo_is_decoded(http: httpx.Client) -> None:
    """A real photo of 1.3 MB, larger than the socket to its decoder holds: before, it was
    taken for a decoder dying twice and answered 503 (any photo past a few hundred KB)."""
    r = photo(http, (DATA / "zxing" / "qrcode-2" / "6.png").read_bytes())
    assert r.status_code == 200, r.text
    assert [c["text"] for c in r.json()["codes"]] == ["http://d.kaywa.com/20207100"]


def test_a_jpeg_of_a_thousand_scans_is_refused_from_its_header(
    service: Served, http: httpx.Client
) -> None:
    still_serving(http)
    before = api_decoders(service)
    r = photo(http, with_last_scan_repeated(progressive_jpeg(), 1000))
    assert (r.status_code, r.json()["type"]) == (422, "/problems/unreadable-image")
    # Refused from the header: no decoder was busy long enough to be killed.
    assert not any(gone(process) for process in before)
    still_serving(http)


def test_a_10000x2_png_is_unreadable_not_a_server_error(http: httpx.Client) -> None:
    r = photo(http, sliver_png(10_000, 2))
    assert (r.status_code, r.json()["type"]) == (422, "/problems/unreadable-image")
    still_serving(http)


def test_a_decode_past_the_time_limit_frees_its_cpu(service: Served, http: httpx.Client) -> None:
    still_serving(http)
    before = api_decoders(service)
    r = photo(http, slow_jpeg())  # just under the scan limit, seconds to decode
    assert (r.status_code, r.json()["type"]) == (422, "/problems/scan-timeout")
    # The 422 comes once its decoder is dead: nothing still works on the photo.
    assert any(gone(process) for process in before)
    still_serving(http)
