"""Operations: health, readiness, metrics, request ids and JSON logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.support.world import World, bearer
from transparency.runtime.logs import JsonFormatter, RequestIdFilter


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.json() == {"status": "ok"}


async def test_readyz_when_migrated(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"


async def test_readyz_refuses_when_a_migration_is_missing(
    client: httpx.AsyncClient, dsn: str
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("delete from schema_migrations")
    finally:
        await conn.close()
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["type"] == "/problems/unavailable"
    assert "0001_schema" in r.json()["detail"]
    assert r.headers["retry-after"] == "1"


async def test_metrics_count_requests_per_route_template(
    client: httpx.AsyncClient, world: World
) -> None:
    for _ in range(3):
        await client.get(f"/v1/products/{world.product_a['id']}", headers=bearer(world.brand_a))
    r = await client.get("/metrics", headers=bearer(world.admin))
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    line = (
        'transparency_http_requests_total{method="GET",route="/v1/products/{product_id}",'
        'status="200"} 3.0'
    )
    assert line in text
    assert "transparency_http_request_duration_seconds_bucket" in text
    assert "transparency_db_pool_size" in text
    assert world.product_a["id"] not in text  # route templates, not raw paths


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32
    again = await client.get("/healthz")
    assert again.headers["x-request-id"] != made.headers["x-request-id"]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_logs_are_json_with_the_request_id_and_no_secrets(
    client: httpx.AsyncClient, world: World, json_log: io.StringIO
) -> None:
    r = await client.post(
        "/v1/api-keys",
        json={"role": "brand", "brand_id": world.brand_a_id},
        headers={**bearer(world.admin), "X-Request-ID": "trace-42"},
    )
    new_key = r.json()["key"]
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    access = [x for x in lines if x.get("msg") == "request" and x.get("request_id") == "trace-42"]
    assert len(access) == 1
    assert access[0]["route"] == "/v1/api-keys"
    assert access[0]["status"] == 201
    everything = json_log.getvalue()
    for secret in (world.admin, new_key, new_key.split("_")[2], world.admin.split("_")[2]):
        assert secret not in everything


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/brands", "/v1/products", "/v1/products/{product_id}", "/readyz"} <= set(
        spec["paths"]
    )
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
