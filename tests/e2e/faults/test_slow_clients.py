"""Slow and surplus clients against a real `transparency serve`: a connection whose request
does not arrive in time is answered 408 and closed, one past the limit 503, and a prompt
client is served meanwhile (before, a half-sent request held its connection for good)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx

from tests.support.served import Served, free_port
from tests.support.world import TEST_PREFIX, bearer, new_gtin
from transparency.domain.api_keys import new_api_key

BOUND = 1.0  # the header and body deadlines given to serve below
ADMIN = str(new_api_key())  # installed at start (TRANSPARENCY_ADMIN_KEY)


def start(data_dir: Path, **env: str) -> Served:
    settings = {
        "TRANSPARENCY_WORKERS": "1",  # one process: every connection counts against its limit
        "TRANSPARENCY_LOG_LEVEL": "ERROR",
        "TRANSPARENCY_HEADER_TIMEOUT_SECONDS": str(BOUND),
        "TRANSPARENCY_BODY_TIMEOUT_SECONDS": str(BOUND),
        "TRANSPARENCY_ADMIN_KEY": ADMIN,
    }
    served = Served(data_dir, free_port(), **{**settings, **env})
    served.wait_ready()
    return served


def answer_and_close(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """What the server sent before closing ``sock``, and when it closed (from now)."""
    started = time.monotonic()
    sock.settimeout(within)
    received = b""
    while chunk := sock.recv(65536):  # raises TimeoutError if the server holds on
        received += chunk
    return received, time.monotonic() - started


def problem(received: bytes) -> tuple[str, dict[str, object]]:
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n")[0].decode()
    assert b"application/problem+json" in head, head
    parsed: dict[str, object] = json.loads(body)
    return status_line, parsed


class Station:
    """A warehouse station with units to ship: each claim on a new connection."""

    def __init__(self, served: Served) -> None:
        self.url = served.url
        admin = bearer(ADMIN)
        with httpx.Client(base_url=served.url, timeout=30) as http:
            brand = {"name": "Acme", "gs1_prefixes": [TEST_PREFIX]}
            brand_key = http.post("/v1/brands", json=brand, headers=admin).json()["api_key"]
            auth = bearer(brand_key["key"])
            product = {"gtin": new_gtin(), "name": "x"}
            made = http.post("/v1/products", json=product, headers=auth).json()
            self.gtin = made["gtin"]
            site = http.post("/v1/sites", json={"name": "DC1"}, headers=admin).json()
            station = {"role": "station", "site_id": site["id"]}
            self.key = http.post("/v1/api-keys", json=station, headers=admin).json()["key"]
            r = http.post(f"/v1/products/{made['id']}/code-batches", json={"count": 40},
                          headers=auth)  # fmt: skip
            location = r.headers["location"]
            deadline = time.monotonic() + 60
            while http.get(location, headers=auth).json()["status"] != "done":
                assert time.monotonic() < deadline, "the batch never finished"
                time.sleep(0.1)
            rows = http.get(f"{location}/codes.csv", headers=auth).text.splitlines()[1:]
        self.codes = iter(row.split(",")[0] for row in rows)

    def claim_seconds(self) -> float:
        """One claim of a new unit, as a station makes it; it must pass."""
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=10) as http:
            scan = {"scan": next(self.codes), "gtin": self.gtin, "shipment_id": "S"}
            r = http.post("/v1/fulfilment/verifications", json=scan, headers=bearer(self.key))
        assert r.json()["result"] == "pass", r.text
        return time.monotonic() - started


def test_slowloris_connections_get_408_within_the_bound(data_home: Path) -> None:
    served = start(data_home)
    station = Station(served)
    baseline = max(station.claim_seconds() for _ in range(5))
    slow: list[socket.socket] = []
    for n in range(30):
        sock = socket.create_connection(("127.0.0.1", served.port))
        if n % 3 == 0:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")  # half a header
        elif n % 3 == 1:  # a body a byte short of its length, never finished
            sock.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n{")
        slow.append(sock)  # and a third send nothing at all
    during = max(station.claim_seconds() for _ in range(5))
    assert during < max(10 * baseline, 1.0)  # claims are not held up by slow clients
    for sock in slow:
        with sock:
            received, seconds = answer_and_close(sock, within=BOUND + 10)
            assert seconds < BOUND + 10
            status_line, body = problem(received)
            assert status_line == "HTTP/1.1 408 Request Timeout", received
            assert body["type"] == "/problems/request-timeout"
    assert station.claim_seconds() < max(10 * baseline, 1.0)
    code, _, err = served.stop()
    assert code == 0, err


def test_connections_past_the_limit_get_503_at_once(data_home: Path) -> None:
    # The held connections' deadline leaves time to open the surplus ones on a busy machine.
    served = start(
        data_home, TRANSPARENCY_MAX_CONNECTIONS="20", TRANSPARENCY_HEADER_TIMEOUT_SECONDS="5"
    )
    held = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(20)]
    extra = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(5)]
    refused = 0
    for sock in extra:
        with sock:
            received, _ = answer_and_close(sock, within=BOUND + 10)
            status_line, body = problem(received)
            if status_line.startswith("HTTP/1.1 503"):
                refused += 1
                assert body["type"] == "/problems/overloaded"
                assert b"retry-after: " in received.lower()
    assert refused == 5  # the first 20 (idle) connections are still open
    for sock in held:  # each freed by the header deadline
        with sock:
            received, _ = answer_and_close(sock, within=5 + 10)
            assert problem(received)[0] == "HTTP/1.1 408 Request Timeout"
    served.wait_ready(timeout=10)  # and the process serves again
    code, _, err = served.stop()
    assert code == 0, err
