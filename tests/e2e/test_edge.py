"""deploy/nginx.conf as shipped, run by a real nginx in front of a real `serve`.

Only what a test cannot run is rewritten: the TLS listener becomes a plain one on a free
loopback port, and the upstreams are the test's `serve`, its port and its stations' port.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import paths
from tests.support.photos import blank_png
from tests.support.served import Served, free_port
from tests.support.world import gtin14
from transparency.domain.api_keys import new_api_key
from transparency.domain.errors import RateLimited


def site_config(listen: int, served: Served) -> str:
    site = (paths.ROOT / "deploy" / "nginx.conf").read_text()
    counts = []
    for upstream, port in (("transparency", served.port), ("stations", served.stations)):
        site, servers = re.subn(
            rf"(upstream {upstream} \{{[^}}]*?)(\s*server 127\.0\.0\.1:\d+[^;]*;)+",
            rf"\g<1>\n    server 127.0.0.1:{port};",
            site,
        )
        counts.append(servers)
    site, listens = re.subn(r"listen 443 ssl http2;", f"listen 127.0.0.1:{listen};", site)
    site, certificates = re.subn(r"\n\s*ssl_certificate(_key)?\s[^;]*;", "", site)
    assert (*counts, listens, certificates) == (1, 1, 1, 2), "deploy/nginx.conf changed shape"
    return site


@dataclass(frozen=True)
class Edge:
    url: str  # nginx's
    served: Served  # behind it: trusts it as a proxy, and has a port for stations
    admin: str  # an admin key of ``served``
    nginx: int  # nginx's pid


@pytest.fixture
def edge(tmp_path: Path, data_home: Path) -> Iterator[Edge]:
    """nginx with deploy/nginx.conf in front of a `serve`."""
    admin = str(new_api_key())
    served = Served(
        data_home, free_port(), TRANSPARENCY_ADMIN_KEY=admin, TRANSPARENCY_WORKERS="1",
        TRANSPARENCY_STATION_PORT=str(free_port()),
        TRANSPARENCY_TRUSTED_PROXIES="127.0.0.1/32", TRANSPARENCY_LOG_LEVEL="ERROR",
    )  # fmt: skip
    served.wait_ready()
    port = free_port()
    home = tmp_path / "nginx"
    home.mkdir()
    (home / "site.conf").write_text(site_config(port, served))
    temp = " ".join(f"{kind}_temp_path {home}/{kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    (home / "nginx.conf").write_text(
        # As root, nginx's workers would run as nobody, who cannot enter pytest's tmp_path.
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\npid {home}/nginx.pid;\nerror_log {home}/error.log;\nevents {{}}\n"
        + f"http {{\n    access_log off;\n    {temp}\n    include {home}/site.conf;\n}}\n"
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", str(home / "nginx.conf"), "-p", str(home)])
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (home / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield Edge(f"http://127.0.0.1:{port}", served, admin, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        served.stop()


def post_photos(
    url: str, count: int, headers: dict[str, str], form: dict[str, str] | None = None
) -> list[httpx.Response]:
    image = blank_png()
    files = {"image": ("p.png", image, "image/png")}
    with httpx.Client(base_url=url, timeout=30) as http:
        return [
            http.post("/v1/scans", files=files, data=form, headers=headers) for _ in range(count)
        ]


def test_the_edge_refuses_anonymous_photos_past_the_customer_budget_itself(edge: Edge) -> None:
    """The service refused such a flood itself, and had each refused body read: four
    clients posting photos in a loop cost the claims 2.4-3.3x their p99 (bench_faults.py).
    Past the budget nginx answers, with the service's problem, and the service never sees
    the request (nginx's own answers carry no X-Request-ID from the service)."""
    started = time.monotonic()
    answers = post_photos(edge.url, 30, {})
    took = time.monotonic() - started
    reached = [r for r in answers if "x-request-id" in r.headers]
    refused = [r for r in answers if "x-request-id" not in r.headers]
    # nginx lets the first and its burst of 20 through at once, and one more for each
    # second the posts took (60 a minute: a busy machine took over a second for the 30);
    # the service's own bucket (20, refilled as fast) may refuse the last of those.
    assert 20 <= len(reached) <= 21 + took, ([r.status_code for r in answers], took)
    assert all(r.status_code == 200 for r in reached[:20]), [r.text for r in reached]
    assert refused, took
    for r in refused:
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "1"
        assert r.json()["type"] == f"/problems/{RateLimited.slug}"


def station_key(served: Served, admin: str) -> dict[str, str]:
    """The Authorization header of a new station's key."""
    with httpx.Client(base_url=served.url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        site = http.post("/v1/sites", json={"name": "DC"}, headers=auth).json()
        r = http.post("/v1/api-keys", json={"role": "station", "site_id": site["id"]}, headers=auth)
        return {"Authorization": f"Bearer {r.json()['key']}"}


def test_the_edge_never_limits_a_station_by_its_address(edge: Edge) -> None:
    station = station_key(edge.served, edge.admin)
    form = {"gtin": gtin14("0950600013435"), "shipment_id": "TRUCK-1"}
    answers = post_photos(edge.url, 30, station, form)
    assert [r.status_code for r in answers] == [200] * 30, [r.text for r in answers]
    assert all("x-request-id" in r.headers for r in answers)


def connected_ports(nginx: int) -> set[int]:
    """The ports nginx's workers hold connections to (kept alive once a request is done)."""
    workers = psutil.Process(nginx).children()
    return {
        c.raddr.port
        for worker in workers
        for c in worker.net_connections(kind="tcp")
        if c.raddr and c.status == psutil.CONN_ESTABLISHED
    }


def test_the_edge_sends_fulfilment_to_the_stations_port_and_the_rest_to_the_public_one(
    edge: Edge,
) -> None:
    """Stations' claims reach API processes that the public's traffic cannot slow; every
    other request reaches the public port's."""
    served = edge.served
    station = station_key(served, edge.admin)
    with httpx.Client(base_url=edge.url, timeout=30) as http:
        claim = {"scan": "TP-not-a-code", "gtin": gtin14("0950600013435"), "shipment_id": "T-1"}
        r = http.post("/v1/fulfilment/verifications", json=claim, headers=station)
        assert r.status_code == 200, r.text
        assert r.json()["result"] == "fail"
        assert connected_ports(edge.nginx) & {served.port, served.stations} == {served.stations}
        r = http.get("/v1/verify", params={"code": "TP-not-a-code"})
        assert r.status_code == 200, r.text
        # The stations' connection may be gone by now (the service closes one idle for 5 s).
        assert served.port in connected_ports(edge.nginx)
