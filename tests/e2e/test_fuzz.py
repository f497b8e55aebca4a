"""Every endpoint fuzzed from the OpenAPI schema (schemathesis): no 5xx for any input.

Each operation is called with every kind of caller (no key, admin, brand, station), so the
generated inputs reach past authentication into validation and the services.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Err

from tests.support.database import pg_home
from tests.support.served import Served, free_port
from tests.support.world import gtin14
from transparency.domain.api_keys import new_api_key


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Served, dict[str, str]]]:
    admin = str(new_api_key())
    home = pg_home()
    service = Served(
        home / "data",
        free_port(),
        TRANSPARENCY_ADMIN_KEY=admin,
        TRANSPARENCY_CUSTOMER_BURST="100000",
        TRANSPARENCY_LOG_LEVEL="ERROR",
    )
    service.wait_ready()
    with httpx.Client(base_url=service.url) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        brand = http.post(
            "/v1/brands", json={"name": "Fuzz", "gs1_prefixes": ["9506000"]}, headers=auth
        ).json()
        site = http.post("/v1/sites", json={"name": "DC"}, headers=auth).json()
        station = http.post(
            "/v1/api-keys", json={"role": "station", "site_id": site["id"]}, headers=auth
        ).json()
        brand_key = brand["api_key"]["key"]
        http.post(
            "/v1/products",
            json={"gtin": gtin14("0950600013435"), "name": "x"},
            headers={"Authorization": f"Bearer {brand_key}"},
        )
    yield service, {"admin": admin, "brand": brand_key, "station": station["key"]}
    service.stop()
    shutil.rmtree(home, ignore_errors=True)


def test_no_input_makes_a_server_error(served: tuple[Served, dict[str, str]]) -> None:
    service, keys = served
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # a schema the fuzzer cannot read is a failure too
        operation = result.ok()
        if operation.path.startswith("/v1/api-keys/") and operation.method.upper() == "DELETE":
            continue  # revoking the fuzzer's own keys would only lock it out
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=15, suppress_health_check=list(HealthCheck), deadline=None)
        def fuzz(case: schemathesis.Case[Any]) -> None:
            for key in (None, *keys.values()):
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.body!r:.200}: "
                        f"{response.status_code}"
                    )

        fuzz()
    assert operations >= 25
    assert not failures, "\n".join(sorted(set(failures)))


# Text a camera or a person could put in a URL: any printable character, quoted.
_SEGMENT = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=120)
# (A client sends no header value with spaces at its ends: h11 refuses to.)
_LANGUAGES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(str.strip)


def test_no_phone_page_makes_a_server_error(served: tuple[Served, dict[str, str]]) -> None:
    """The pages a phone opens (/t/{code}, the GS1 Digital Link path) are not in the
    OpenAPI schema, so they are fuzzed here: any code, GTIN, serial and Accept-Language."""
    service, _ = served
    failures: list[str] = []
    with httpx.Client(base_url=service.url) as http:

        @given(code=_SEGMENT, gtin=_SEGMENT, serial=_SEGMENT, language=_LANGUAGES)
        @settings(max_examples=60, suppress_health_check=list(HealthCheck), deadline=None)
        def fuzz(code: str, gtin: str, serial: str, language: str) -> None:
            for path in (f"/t/{quote(code, safe='')}",
                         f"/01/{quote(gtin, safe='')}/21/{quote(serial, safe='')}"):  # fmt: skip
                # /01/...: the resolver's 307 to the verdict page, or its 400
                response = http.get(
                    path, headers={"Accept-Language": language}, follow_redirects=True
                )
                if response.status_code >= 500:
                    failures.append(f"GET {path} ({language!r}): {response.status_code}")
                elif response.status_code < 300:
                    assert response.headers["content-type"].startswith("text/html")

        fuzz()
    assert not failures, "\n".join(sorted(set(failures)))
