"""The customer rate limit of a served instance counts clients, not what they claim to be."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx

from tests.support.served import Served, free_port
from tests.support.world import TEST_PREFIX, gtin14
from transparency.domain.api_keys import new_api_key


def statuses(served: Served, forwarded: list[str]) -> list[int]:
    """The status of a customer check sent with each X-Forwarded-For value."""
    with httpx.Client(base_url=served.url, timeout=30) as http:
        return [
            http.get("/v1/verify", params={"code": "x"}, headers={"X-Forwarded-For": f}).status_code
            for f in forwarded
        ]


def test_a_local_peer_cannot_buy_budgets_with_x_forwarded_for(tmp_path: Path) -> None:
    """uvicorn took X-Forwarded-For from any loopback peer as the client: a new address per
    request was a new budget. Without trusted proxies, the peer is the client."""
    served = Served(
        tmp_path / "data", free_port(), TRANSPARENCY_LOG_LEVEL="ERROR",
        TRANSPARENCY_CUSTOMER_BURST="3", TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1",
    )  # fmt: skip
    served.wait_ready()
    forged = statuses(served, [f"198.51.100.{n}" for n in range(5)])
    code, _, err = served.stop()
    assert code == 0, err
    assert forged[3:] == [429, 429]
    assert 429 not in forged[:3]


def test_a_trusted_proxy_names_the_client_and_its_spellings_share_a_budget(
    tmp_path: Path,
) -> None:
    served = Served(
        tmp_path / "data", free_port(), TRANSPARENCY_LOG_LEVEL="ERROR",
        TRANSPARENCY_CUSTOMER_BURST="2", TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1",
        TRANSPARENCY_TRUSTED_PROXIES="127.0.0.0/8",
    )  # fmt: skip
    served.wait_ready()
    one_client = ["2001:db8::7", "2001:DB8:0::7", "2001:db8::8"]  # one /64
    others = ["6.6.6.6, 203.0.113.9", "::ffff:203.0.113.10"]
    got = statuses(served, one_client), statuses(served, others)
    code, _, err = served.stop()
    assert code == 0, err
    assert got[0][2] == 429
    assert 429 not in got[0][:2]
    assert 429 not in got[1]  # each its own client, as the proxy says


def test_a_flood_from_many_addresses_is_shed_and_stations_keep_claiming(tmp_path: Path) -> None:
    """Each address of a flood has its whole budget: only the process's budget for all
    clients together sheds it. Past that budget a check is refused at once, with a problem
    of its own type and Retry-After; station claims meanwhile pass as before."""
    admin = str(new_api_key())
    served = Served(
        tmp_path / "data", free_port(), TRANSPARENCY_LOG_LEVEL="ERROR", TRANSPARENCY_WORKERS="1",
        TRANSPARENCY_ADMIN_KEY=admin, TRANSPARENCY_TRUSTED_PROXIES="127.0.0.1/32",
        TRANSPARENCY_CUSTOMER_CHECKS_PER_SECOND="20",
    )  # fmt: skip
    served.wait_ready()
    with httpx.Client(base_url=served.url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        r = http.post(
            "/v1/brands", json={"name": "Acme", "gs1_prefixes": [TEST_PREFIX]}, headers=auth
        )
        brand = {"Authorization": f"Bearer {r.json()['api_key']['key']}"}
        site = http.post("/v1/sites", json={"name": "DC"}, headers=auth).json()
        station_key = http.post(
            "/v1/api-keys", json={"role": "station", "site_id": site["id"]}, headers=auth
        ).json()["key"]
        gtin = gtin14("0950600013435")
        product = http.post("/v1/products", json={"gtin": gtin, "name": "x"}, headers=brand)
        r = http.post(
            f"/v1/products/{product.json()['id']}/code-batches", json={"count": 5}, headers=brand
        )
        location = r.headers["location"]
        while http.get(location, headers=brand).json()["status"] != "done":
            time.sleep(0.1)
        codes = [line.split(",")[0] for line in http.get(f"{location}/codes.csv", headers=brand)
                 .text.splitlines()[1:]]  # fmt: skip

        answers = []
        started = time.monotonic()
        for n in range(200):  # faster than 20 a second: each its own client
            answers.append(
                http.get(
                    "/v1/verify",
                    params={"code": codes[0]},
                    headers={"X-Forwarded-For": f"2001:db8:{n:x}::1"},
                )
            )
        took = time.monotonic() - started
        claims = [
            http.post(
                "/v1/fulfilment/verifications",
                json={"scan": code, "gtin": gtin, "shipment_id": "TRUCK-1"},
                headers={"Authorization": f"Bearer {station_key}"},
            )
            for code in codes
        ]
    code, _, err = served.stop()
    assert code == 0, err
    answered = [a for a in answers if a.status_code == 200]
    shed = [a for a in answers if a.status_code == 503]
    assert len(answered) + len(shed) == len(answers), {a.status_code for a in answers}
    # A second's worth at once, then what refilled while the flood went on (on a very busy
    # machine the flood is slower, and more of it is answered).
    assert 20 <= len(answered) <= 20 + 20 * took + 1, (len(answered), took)
    assert shed, took
    assert {a.headers["content-type"] for a in shed} == {"application/problem+json"}
    assert {a.json()["type"].rsplit("/", 1)[-1] for a in shed} == {"customer-checks-busy"}
    assert {a.headers["retry-after"] for a in shed} == {"1"}
    assert [c.json()["result"] for c in claims] == ["pass"] * len(codes), [c.text for c in claims]


def answer_to_head(served: Served, path: str) -> bytes:
    """What the service answers a customer upload of 1 MB whose body never comes."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode()
        )
        answer = b""
        while chunk := s.recv(65536):  # to the end: the service closes the connection
            answer += chunk
    return answer


def test_an_upload_past_the_customer_budget_is_refused_before_its_body(tmp_path: Path) -> None:
    """A report had its whole form read before its budget was looked at: a client past its
    budget could make the service read megabytes for each refusal, or wait for them (here
    the body never comes: the answer was a 408 after 30 s). Both customer uploads are now
    refused from their head."""
    served = Served(
        tmp_path / "data", free_port(), TRANSPARENCY_LOG_LEVEL="ERROR",
        TRANSPARENCY_CUSTOMER_BURST="1", TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1",
    )  # fmt: skip
    served.wait_ready()
    spent = statuses(served, [""])
    answers = {path: answer_to_head(served, path) for path in ("/v1/reports", "/v1/scans")}
    code, _, err = served.stop()
    assert code == 0, err
    assert spent != [429]
    for path, answer in answers.items():
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        assert lines[0] == b"http/1.1 429 too many requests", (path, lines)
        assert b"connection: close" in lines
        assert any(line.startswith(b"retry-after: ") for line in lines)
        assert json.loads(body)["type"] == "/problems/rate-limited"
