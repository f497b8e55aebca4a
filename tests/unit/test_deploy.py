"""deploy/ agrees with the service: nginx refuses no body the service would take, and takes
none the service would refuse, with the same problem type; its header timeout is the
service's."""

from __future__ import annotations

import re

from tests.support import paths
from tests.support.nginx import NGINX, upstream_ports
from transparency.domain.errors import PayloadTooLarge, RateLimited
from transparency.runtime.settings import Settings


def default(name: str) -> object:
    return Settings.model_fields[name].default


def body_limits() -> dict[str, int]:
    """nginx's client_max_body_size by location ("" for the server's own)."""
    limits: dict[str, int] = {}
    location = ""
    for line in NGINX.splitlines():
        line = line.strip()
        if opened := re.match(r"location\s+(.+?)\s*\{$", line):
            location = opened.group(1)
        elif line == "}":
            location = ""
        elif found := re.match(r"client_max_body_size\s+(\d+);$", line):
            limits[location] = int(found.group(1))  # bytes, exactly: no k or m rounding
    return limits


def test_nginx_body_limits_are_the_services() -> None:
    assert body_limits() == {
        "": default("max_body_bytes"),
        "= /v1/scans": default("scan_max_bytes"),
        r"~ ^/v1/products/[^/]+/serial-imports$": default("max_import_bytes"),
    }


def test_nginx_import_location_matches_the_import_path() -> None:
    pattern = re.compile(r"^/v1/products/[^/]+/serial-imports$")
    assert pattern.match("/v1/products/0b7c7a0e-8a53-4b8e-9d43-4f1f1e0c7a11/serial-imports")
    assert not pattern.match("/v1/products/x/serial-imports/other")


def test_nginx_refuses_a_large_body_with_the_services_problem() -> None:
    assert "error_page 413 = @payload_too_large;" in NGINX
    assert f'"type": "/problems/{PayloadTooLarge.slug}"' in NGINX


def test_nginx_limits_anonymous_photos_at_the_services_customer_budget() -> None:
    rate = re.search(r"limit_req_zone \$anonymous_client zone=photos:\w+ rate=(\d+)r/m;", NGINX)
    burst = re.search(r"limit_req zone=photos burst=(\d+) nodelay;", NGINX)
    assert rate is not None
    assert burst is not None
    assert int(rate.group(1)) == default("customer_rate_per_minute")
    assert int(burst.group(1)) == default("customer_burst")
    # Only requests without a key are counted: an empty key is never limited.
    assert re.search(r'map \$http_authorization \$anonymous_client \{\s+""\s+\$binary_remote_addr;'
                     r'\s+default "";', NGINX)  # fmt: skip
    assert "error_page 429 = @rate_limited;" in NGINX
    assert f'"type": "/problems/{RateLimited.slug}"' in NGINX


def test_nginx_header_timeout_is_the_services() -> None:
    found = re.search(r"client_header_timeout\s+(\d+)s;", NGINX)
    assert found is not None
    assert float(found.group(1)) == default("header_timeout_seconds")


def test_systemd_stops_serve_with_sigterm_and_time_for_both_stops() -> None:
    unit = (paths.ROOT / "deploy" / "transparency@.service").read_text()
    assert "KillSignal" not in unit  # SIGTERM: requests in flight finish, PostgreSQL stops
    found = re.search(r"TimeoutStopSec=(\d+)", unit)
    assert found is not None
    assert int(found.group(1)) > 30  # the servers' graceful shutdown, then PostgreSQL's stop


def test_nginx_sends_fulfilment_to_the_systemd_instances_stations_ports() -> None:
    """transparency@8001 serves stations on 18001: nginx's upstream "stations" holds the
    station port of each instance its upstream "transparency" holds."""
    unit = (paths.ROOT / "deploy" / "transparency@.service").read_text()
    assert "Environment=TRANSPARENCY_STATION_PORT=1%i" in unit

    stations = [int(f"1{port}") for port in upstream_ports("transparency")]
    assert upstream_ports("stations") == stations
    assert re.search(r"location /v1/fulfilment/ \{\s+proxy_pass http://stations;\s+\}", NGINX)
