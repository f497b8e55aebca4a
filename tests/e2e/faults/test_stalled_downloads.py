"""Fulfilment always gets a connection: downloads whose clients stop reading hold none.

Eight downloads of large files (codes.csv, codes.jsonl, labels.pdf, EPCIS, an import's
rejections) are requested over raw sockets that then never read, from one API process
with a pool of four connections; the server's writes stop once the sockets' buffers fill.
Single claims made meanwhile must keep the latency they had before, and /readyz stays
ready. Each stalled download once held a pooled connection in an open transaction for as
long as its client stayed: four of them took the pool, and claims waited for ever.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from tests.support.served import Served, free_port
from tests.support.world import TEST_PREFIX, gtin14
from transparency.domain.api_keys import new_api_key

LARGE = 100_000  # codes: a CSV of about 19 MB, far past what socket buffers hold (4-6 MB)
CLAIMS = 50
REJECTED = 40_000  # rows of an import, each refused: a report of about 8 MB


def batch(http: httpx.Client, brand: dict[str, str], product: str, **body: object) -> str:
    r = http.post(f"/v1/products/{product}/code-batches", json=body, headers=brand)
    assert r.status_code == 202, r.text
    location: str = r.headers["location"]
    deadline = time.monotonic() + 180
    while http.get(location, headers=brand).json()["status"] != "done":
        assert time.monotonic() < deadline, "the batch did not finish"
        time.sleep(0.2)
    return location


def stalled_download(port: int, path: str, key: str) -> tuple[socket.socket, bytes]:
    """Request ``path`` and read its status line only; the socket is never read again."""
    s = socket.socket()
    # A small receive window: the server's writes stop after a few MB at most.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
    s.sendall(request.encode())
    status = s.recv(12)
    return s, status


def claim_seconds(
    http: httpx.Client, station: dict[str, str], gtin: str, codes: Iterator[str]
) -> list[float]:
    took = []
    for code in [next(codes) for _ in range(CLAIMS)]:
        start = time.perf_counter()
        r = http.post(
            "/v1/fulfilment/verifications",
            json={"scan": code, "gtin": gtin, "shipment_id": "TRUCK-1"},
            headers=station,
        )
        took.append(time.perf_counter() - start)
        assert r.status_code == 200, r.text
        assert r.json()["result"] == "pass", r.text
    return took


def wait_until_idle(pid: int, deadline_seconds: float = 180) -> None:
    """Until ``pid`` and its children (API process, PostgreSQL, renderers) use under a
    fifth of a core: every stalled download has filled its buffers and waits."""
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    deadline = time.monotonic() + deadline_seconds
    for process in tree:
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
    while time.monotonic() < deadline:
        time.sleep(0.5)  # the interval the CPU use is measured over
        used = 0.0
        for process in tree:
            with contextlib.suppress(psutil.Error):
                used += process.cpu_percent(None)
        if used < 20:
            return
    raise AssertionError("the service never went idle with its downloads stalled")


def renderers(pid: int) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "transparency.labels.worker" in child.cmdline():
                found.append(child)
        except psutil.Error:  # ended meanwhile
            continue
    return found


def test_claims_keep_their_latency_while_eight_downloads_stall(data_home: Path) -> None:
    admin = str(new_api_key())
    env = {
        "TRANSPARENCY_ADMIN_KEY": admin,
        "TRANSPARENCY_WORKERS": "1",
        "TRANSPARENCY_POOL_MAX_SIZE": "4",
    }
    served = Served(data_home, free_port(), **env)
    served.wait_ready()
    gtin = gtin14("0950600013435")
    # A 10 s ceiling per request: a claim that waits for a connection fails, not hangs.
    http = httpx.Client(base_url=served.url, timeout=10)
    auth = {"Authorization": f"Bearer {admin}"}
    r = http.post("/v1/brands", json={"name": "Acme", "gs1_prefixes": [TEST_PREFIX]}, headers=auth)
    key = r.json()["api_key"]["key"]
    brand = {"Authorization": f"Bearer {key}"}
    site = http.post("/v1/sites", json={"name": "DC"}, headers=auth).json()
    station_key = http.post(
        "/v1/api-keys", json={"role": "station", "site_id": site["id"]}, headers=auth
    ).json()["key"]
    station = {"Authorization": f"Bearer {station_key}"}
    product = http.post("/v1/products", json={"gtin": gtin, "name": "x"}, headers=brand).json()

    large = batch(http, brand, product["id"], count=LARGE)
    gs1 = batch(http, brand, product["id"], count=LARGE, format="gs1")
    small = batch(http, brand, product["id"], count=3 * CLAIMS)
    lines = "serial,lot,expiry\n" + "".join(f"bad~{i},L,2027-01-31\n" for i in range(REJECTED))
    r = http.post(
        f"/v1/products/{product['id']}/serial-imports",
        content=lines.encode(),
        headers={**brand, "content-type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    imported = r.headers["location"]
    deadline = time.monotonic() + 180
    while http.get(imported, headers=brand).json()["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.2)
    text = http.get(f"{small}/codes.csv", headers=brand).text
    codes = iter([line.split(",")[0] for line in text.splitlines()[1:]])

    before = claim_seconds(http, station, gtin, codes)

    paths = [
        f"{large}/codes.csv",
        f"{large}/codes.csv",
        f"{large}/codes.jsonl",
        f"{gs1}/codes.csv",
        f"{large}/labels.pdf",
        f"{gs1}/labels.pdf",
        f"{gs1}/epcis.jsonld",
        f"{imported}/rejections.csv",
    ]
    stalled = [stalled_download(served.port, path, key) for path in paths]
    try:
        # While the downloads fill their buffers (real work: reading, formatting, drawing)
        # claims are answered; once every download is stalled, as fast as before.
        filling = claim_seconds(http, station, gtin, codes)
        assert http.get("/readyz").status_code == 200
        wait_until_idle(served.proc.pid)
        during = claim_seconds(http, station, gtin, codes)
        assert http.get("/readyz").status_code == 200
        statuses = [status for _, status in stalled]
        # A download either started (200) or was told to come back (503 with Retry-After),
        # and more of them started than the pool has connections.
        assert all(s[9:12] in (b"200", b"503") for s in statuses), statuses
        assert sum(s[9:12] == b"200" for s in statuses) > 4, statuses
        # Labels are drawn by a process of their own, never by the API process.
        assert renderers(served.proc.pid), "no label renderer process is running"
    finally:
        for s, _ in stalled:
            s.close()
        http.close()
        served.stop()
    assert max(filling) < 2.0, filling
    assert max(during) < 2.0, during
    # Generous: a stalled download may cost a claim some CPU, never a wait for a connection.
    assert statistics.median(during) < 5 * statistics.median(before) + 0.05, (before, during)


def unsent_bytes(server_port: int, client_port: int) -> int:
    """What the kernel holds unsent on the server's side of one loopback connection
    (/proc/net/tcp's tx_queue)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return int(queues.split(":")[0], 16)
    raise AssertionError("the connection is not in /proc/net/tcp")


def test_a_stalled_label_download_stops_its_renderer_within_a_few_hundred_kb(
    data_home: Path,
) -> None:
    """A label file is drawn at about 70 KB a second by a core's worth of bulk work. A
    client that stopped reading had the kernel buffer up to 4 MB of it (loopback's
    autotuning), and the renderer drew for a minute for nobody; the socket grew past 1 MB
    in 15 s. Now the response's socket holds little, and so does every buffer before it."""
    admin = str(new_api_key())
    served = Served(data_home, free_port(), TRANSPARENCY_ADMIN_KEY=admin, TRANSPARENCY_WORKERS="1")
    served.wait_ready()
    http = httpx.Client(base_url=served.url, timeout=30)
    auth = {"Authorization": f"Bearer {admin}"}
    r = http.post("/v1/brands", json={"name": "Acme", "gs1_prefixes": [TEST_PREFIX]}, headers=auth)
    key = r.json()["api_key"]["key"]
    brand = {"Authorization": f"Bearer {key}"}
    gtin = gtin14("0950600013435")
    product = http.post("/v1/products", json={"gtin": gtin, "name": "x"}, headers=brand).json()
    labels = batch(http, brand, product["id"], count=20_000) + "/labels.pdf"
    s, status = stalled_download(served.port, labels, key)
    try:
        assert status[9:12] == b"200", status
        client_port = s.getsockname()[1]
        # Until the renderer waits on its pipe (its CPU time still over a second), or the
        # socket holds far more than it should: either ends this, whatever the machine's pace.
        deadline = time.monotonic() + 300
        drawn, still = -1.0, 0
        while still < 2 and unsent_bytes(served.port, client_port) < 1 << 20:
            assert time.monotonic() < deadline, "the renderer never stopped"
            time.sleep(0.5)
            (renderer,) = renderers(served.proc.pid)
            now = sum(renderer.cpu_times()[:2])
            drawn, still = now, still + 1 if now == drawn else 0
        assert unsent_bytes(served.port, client_port) <= 128 * 1024
        assert still == 2, "the renderer was still drawing"
    finally:
        s.close()
        http.close()
        served.stop()
