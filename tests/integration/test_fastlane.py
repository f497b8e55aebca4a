"""The fast lane answers every request exactly as the full FastAPI stack does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from tests.support.asgi import with_lifespan_state
from tests.support.world import World, bearer, issue_codes
from transparency.api.fastpath.lane import LaneApp
from transparency.api.metrics import Metrics

SINGLE = "/v1/fulfilment/verifications"
BATCH = "/v1/fulfilment/verifications/batch"


@pytest.fixture
async def full(app: FastAPI) -> Any:
    """A client of the same app, through FastAPI's own __call__: no lane."""

    async def stack(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    transport = httpx.ASGITransport(
        app=with_lifespan_state(stack, app.state.lifespan_state),  # type: ignore[arg-type]
        raise_app_exceptions=False,
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def seen(r: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    return r.status_code, dict(r.headers), r.content


def requests(world: World, code: str) -> list[tuple[str, dict[str, str], bytes]]:
    gtin = world.product_a["gtin"]
    auth = {**bearer(world.station), "content-type": "application/json"}

    def body(scan: str, **extra: Any) -> bytes:
        return httpx.Request("POST", "/", json={"scan": scan, "gtin": gtin, **extra}).content

    return [
        (SINGLE, auth, body(code[:-1] + ("0" if code[-1] != "0" else "1"), shipment_id="S")),
        (SINGLE, auth, body("not a code", shipment_id="S")),
        (SINGLE, auth, body(code)),  # no shipment id: 422
        (SINGLE, auth, b'{"scan": '),  # broken JSON
        (SINGLE, {"content-type": "application/json"}, body(code, shipment_id="S")),
        (SINGLE, {**bearer(world.brand_a), "content-type": "application/json"}, body(code)),
        (SINGLE, {**auth, "idempotency-key": "k" * 201}, body(code, shipment_id="S")),
        (SINGLE, auth, b"{" + b" " * 300_000 + b"}"),  # over the body limit
        (BATCH, auth, httpx.Request("POST", "/", json={"shipment_id": "S", "items": []}).content),
        (BATCH, auth, body(code)),
    ]


async def test_refusals_and_errors_are_answered_alike(
    client: httpx.AsyncClient, full: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    (row,) = await issue_codes(client, world, 1)
    for n, (path, headers, content) in enumerate(requests(world, row["code"])):
        headers["x-request-id"] = f"same-{n}"  # problem bodies name it
        lane = await client.post(path, headers=headers, content=content)
        stack = await full.post(path, headers=headers, content=content)
        assert lane.status_code != 200 or b'"fail"' in lane.content, lane.text
        assert seen(lane) == seen(stack), (path, content[:60])


async def test_a_pass_and_its_replay_are_answered_alike(
    client: httpx.AsyncClient, full: httpx.AsyncClient, world: World
) -> None:
    rows = await issue_codes(client, world, 2)
    headers = {**bearer(world.station), "x-request-id": "same"}
    for first, replay, row in ((client, full, rows[0]), (full, client, rows[1])):
        headers["Idempotency-Key"] = f"once-{row['code']}"
        body = {"scan": row["code"], "gtin": world.product_a["gtin"], "shipment_id": "S"}
        passed = await first.post(SINGLE, json=body, headers=headers)
        assert passed.json()["result"] == "pass"
        assert seen(await replay.post(SINGLE, json=body, headers=headers)) == seen(passed)


async def test_lane_requests_are_counted_under_their_route(
    client: httpx.AsyncClient, world: World, app: FastAPI
) -> None:
    metrics: Metrics = app.state.metrics
    r = await client.post(SINGLE, json={"scan": "x", "gtin": "1", "shipment_id": "S"})
    assert r.status_code == 401
    text = metrics.render().decode()
    assert f'route="{SINGLE}",status="401"' in text


def test_the_lane_holds_the_stations_and_the_customers_checks(app: LaneApp) -> None:
    verify = "/v1/verify"
    assert app.lane == {("POST", SINGLE), ("POST", BATCH), ("GET", verify), ("POST", verify)}


async def test_customer_checks_are_answered_alike(
    client: httpx.AsyncClient, full: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    forged = row["code"][:-1] + ("0" if row["code"][-1] != "0" else "1")
    gets = [{"code": forged}, {"code": "junk", "region": "FR"}, {}, {"code": "x", "region": "fr"}]
    posts: list[dict[str, Any]] = [{"scan": forged}, {"scan": ""}, {"scan": "x", "extra": 1}]
    for n, params in enumerate(gets):
        headers = {"x-request-id": f"get-{n}"}
        lane = await client.get("/v1/verify", params=params, headers=headers)
        assert seen(lane) == seen(await full.get("/v1/verify", params=params, headers=headers))
    for n, body in enumerate(posts):
        headers = {"x-request-id": f"post-{n}"}
        lane = await client.post("/v1/verify", json=body, headers=headers)
        assert seen(lane) == seen(await full.post("/v1/verify", json=body, headers=headers))
    assert lane.status_code == 422  # the last one: an unknown field


async def test_an_unexpected_error_is_answered_alike(
    client: httpx.AsyncClient,
    full: httpx.AsyncClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*_: Any) -> dict[str, Any]:
        raise RuntimeError("a defect")

    monkeypatch.setattr("transparency.services.fulfilment.verify_one", broken)
    body = {"scan": "x", "gtin": world.product_a["gtin"], "shipment_id": "S"}
    headers = {**bearer(world.station), "x-request-id": "broken"}
    lane = await client.post(SINGLE, json=body, headers=headers)
    assert lane.status_code == 500
    assert lane.headers["content-type"] == "application/problem+json"
    assert "a defect" not in lane.text  # nothing of the error leaks
    assert seen(lane) == seen(await full.post(SINGLE, json=body, headers=headers))
