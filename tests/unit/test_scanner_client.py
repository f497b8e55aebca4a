"""``scanner.client``: the two calls, and every failure translated to a scanner error."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from scanner.client import Client, retry_after
from scanner.errors import ApiError, Unreachable

API = "http://api.test"
PASS = {"result": "pass", "reason": None, "unit": {"code": "TP1"}, "first_shipped": None}
ANSWER = {"verdict": "authentic", "code": "TP1", "product": {"name": "Tea"}, "warnings": []}
PROBLEM = "application/problem+json"

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def requests() -> list[httpx.Request]:
    return []


def client_for(
    handler: Handler, requests: list[httpx.Request], *, key: str | None = None
) -> Client:
    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    return Client(API, key=key, transport=httpx.MockTransport(record))


@pytest.fixture
def answering(requests: list[httpx.Request]) -> Iterator[Callable[[Handler], Client]]:
    clients: list[Client] = []

    def make(handler: Handler) -> Client:
        clients.append(client_for(handler, requests, key="station-key"))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def problem(status: int, type_: str, detail: str, **headers: str) -> Handler:
    body = {"type": type_, "title": "Refused", "status": status, "detail": detail}
    return lambda request: httpx.Response(
        status, json=body, headers={"Content-Type": PROBLEM, **headers}
    )


def test_verify_posts_the_scan_and_region(requests: list[httpx.Request]) -> None:
    with client_for(lambda r: httpx.Response(200, json=ANSWER), requests) as client:
        assert client.verify("]Q1TP1", region="FR") == ANSWER
        client.verify("TP2")
    first, second = requests
    assert (first.method, str(first.url)) == ("POST", f"{API}/v1/verify")
    assert json.loads(first.content) == {"scan": "]Q1TP1", "region": "FR"}
    assert json.loads(second.content) == {"scan": "TP2"}
    assert "Authorization" not in first.headers  # customers have no key


def test_claim_sends_the_key_and_the_idempotency_key(
    answering: Callable[[Handler], Client], requests: list[httpx.Request]
) -> None:
    client = answering(lambda r: httpx.Response(200, json=PASS))
    key = "5b0c7d1e-0000-4000-8000-000000000001"
    assert client.claim("TP1", gtin="09506000134352", shipment_id="S1", idempotency_key=key) == (
        PASS
    )
    (request,) = requests
    assert str(request.url) == f"{API}/v1/fulfilment/verifications"
    assert request.headers["Authorization"] == "Bearer station-key"
    assert request.headers["Idempotency-Key"] == key
    assert json.loads(request.content) == {
        "scan": "TP1",
        "gtin": "09506000134352",
        "shipment_id": "S1",
    }


def claim(client: Client) -> dict[str, object]:
    return client.claim("TP1", gtin="09506000134352", shipment_id="S1", idempotency_key="k")


@pytest.mark.parametrize(
    ("status", "key_refused"), [(401, True), (403, True), (404, False), (422, False)]
)
def test_a_problem_becomes_an_api_error(
    answering: Callable[[Handler], Client], status: int, key_refused: bool
) -> None:
    client = answering(problem(status, "https://transparency.dev/problems/nope", "no because"))
    with pytest.raises(ApiError) as caught:
        claim(client)
    error = caught.value
    assert (error.type, error.status, error.title, error.detail) == (
        "https://transparency.dev/problems/nope",
        status,
        "Refused",
        "no because",
    )
    assert error.key_refused is key_refused


def test_an_error_page_that_is_not_a_problem_is_about_blank(
    answering: Callable[[Handler], Client],
) -> None:
    client = answering(lambda r: httpx.Response(404, text="<h1>nginx</h1>"))
    with pytest.raises(ApiError) as caught:
        claim(client)
    assert (caught.value.type, caught.value.status, caught.value.title) == (
        "about:blank",
        404,
        "Not Found",
    )


@pytest.mark.parametrize(
    "handler",
    [
        problem(503, "about:blank", "starting", **{"Retry-After": "3"}),
        problem(
            429, "https://transparency.dev/problems/rate-limited", "slow", **{"Retry-After": "3"}
        ),
        lambda r: httpx.Response(500, text="Internal Server Error"),
        lambda r: httpx.Response(502, text="<html>bad gateway</html>"),
        lambda r: httpx.Response(200, text="<html>captive portal</html>"),
        lambda r: httpx.Response(200, json={"verdict": "maybe"}),
        lambda r: httpx.Response(200, json=[1, 2]),
    ],
    ids=["503", "429", "500", "502-html", "200-html", "200-wrong-shape", "200-list"],
)
def test_answers_to_try_again_later_are_unreachable(
    answering: Callable[[Handler], Client], handler: Handler
) -> None:
    client = answering(handler)
    with pytest.raises(Unreachable) as caught:
        client.verify("TP1")
    if "Retry-After" in handler(httpx.Request("POST", API)).headers:
        assert caught.value.retry_after == 3.0


@pytest.mark.parametrize(
    "transport_error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")],
)
def test_transport_errors_are_unreachable_and_keep_their_cause(
    answering: Callable[[Handler], Client], transport_error: httpx.TransportError
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise transport_error

    client = answering(fail)
    with pytest.raises(Unreachable) as caught:
        claim(client)
    assert caught.value.__cause__ is transport_error
    assert caught.value.retry_after is None


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("120") == 120.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= (retry_after(later) or 0) <= 60
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=60), usegmt=True)
    assert retry_after(earlier) == 0.0


def test_the_base_url_may_have_a_path(requests: list[httpx.Request]) -> None:
    with Client(
        f"{API}/transparency", transport=httpx.MockTransport(lambda r: _answer(r, requests))
    ) as client:
        client.verify("TP1")
    assert str(requests[0].url) == f"{API}/transparency/v1/verify"


def _answer(request: httpx.Request, requests: list[httpx.Request]) -> httpx.Response:
    requests.append(request)
    return httpx.Response(200, json=ANSWER)
