"""The head gate (``api.gate``) answers a customer upload past its budget exactly as the app
would, spends nothing, and lets everything else through to the app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.responses import Response

from tests.support.asgi import make_client
from tests.support.photos import blank_png
from transparency.api.app import create_app
from transparency.api.gate import CUSTOMER_UPLOADS, HEAD_GATE, HeadGate
from transparency.runtime.settings import Settings

PEER = "127.0.0.1"  # httpx's ASGITransport's client
FORM = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"9000")]


@asynccontextmanager
async def one_check_a_minute(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    application = create_app(
        settings.model_copy(update={"customer_burst": 1, "customer_rate_per_minute": 1})
    )
    async with application.router.lifespan_context(application) as state:
        application.state.lifespan_state = state
        async with make_client(application) as http:
            yield http, application


def same_answer(gate: Response | None, app: httpx.Response) -> None:
    assert gate is not None, "the gate let through what the app refuses"
    assert gate.status_code == app.status_code == 429
    assert json.loads(bytes(gate.body)) == app.json()
    for name in ("content-type", "retry-after", "content-length", "x-request-id"):
        assert gate.headers[name] == app.headers[name], name


async def test_the_gate_refuses_a_spent_budget_as_the_app_does(settings: Settings) -> None:
    async with one_check_a_minute(settings) as (http, app):
        gate: HeadGate = app.state.lifespan_state[HEAD_GATE]
        assert (await http.post("/v1/scans", files={"image": ("b.png", blank_png())})).json()
        photo, form = {"image": ("b.png", blank_png())}, {"code": "X", "place": "a shop"}
        named = {"X-Request-ID": "probe-1"}
        by_app = {
            "/v1/scans": await http.post("/v1/scans", files=photo, headers=named),
            "/v1/reports": await http.post("/v1/reports", data=form, headers=named),
        }
        head = [*FORM, (b"x-request-id", b"probe-1")]
        for method, path in CUSTOMER_UPLOADS:
            same_answer(gate(method, path + b"?x=1", head, PEER), by_app[path.decode()])
        metrics = app.state.metrics.render().decode()
        assert 'route="/v1/scans",status="429"} 2.0' in metrics  # the app's and the gate's


async def test_the_gate_spends_nothing_and_leaves_the_rest_to_the_app(settings: Settings) -> None:
    async with one_check_a_minute(settings) as (http, app):
        gate: HeadGate = app.state.lifespan_state[HEAD_GATE]
        for _ in range(5):  # a budget of one, looked at five times
            assert gate(b"POST", b"/v1/scans", FORM, PEER) is None
        r = await http.post("/v1/scans", files={"image": ("b.png", blank_png())})
        assert r.json() == {"codes": []}
        # Spent now: the gate refuses a customer's photo, not a station's, nor other paths.
        assert gate(b"POST", b"/v1/scans", FORM, PEER) is not None
        keyed = [*FORM, (b"authorization", b"Bearer nope")]
        assert gate(b"POST", b"/v1/scans", keyed, PEER) is None
        for method, path in [(b"GET", b"/v1/scans"), (b"POST", b"/v1/scans/x"), (b"GET", b"/")]:
            assert gate(method, path, FORM, PEER) is None


@pytest.mark.parametrize("peer", ["192.0.2.7", None])
async def test_each_client_has_its_own_budget_at_the_gate(settings: Settings, peer: Any) -> None:
    async with one_check_a_minute(settings) as (http, app):
        gate: HeadGate = app.state.lifespan_state[HEAD_GATE]
        await http.post("/v1/scans", files={"image": ("b.png", blank_png())})
        assert gate(b"POST", b"/v1/scans", FORM, PEER) is not None
        assert gate(b"POST", b"/v1/scans", FORM, peer) is None  # another client's budget
