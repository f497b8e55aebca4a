"""Every error is RFC 9457 application/problem+json with a stable type."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.support.problems import assert_problem
from tests.support.world import World, bearer, gtin14


async def test_malformed_json(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/products",
        content=b'{"gtin": "1234',
        headers={**bearer(world.brand_a), "content-type": "application/json"},
    )
    assert_problem(r, 400, "/problems/malformed-json")


async def test_wrong_type_names_the_field(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/products",
        json={"gtin": gtin14("0000000000001"), "name": "x", "requires_check": "sometimes"},
        headers=bearer(world.brand_a),
    )
    body = assert_problem(r, 422, "/problems/invalid-input")
    assert [e["field"] for e in body["errors"]] == ["requires_check"]


async def test_missing_field_is_named(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post("/v1/products", json={"name": "x"}, headers=bearer(world.brand_a))
    body = assert_problem(r, 422, "/problems/invalid-input")
    assert [e["field"] for e in body["errors"]] == ["gtin"]


async def test_unknown_fields_are_rejected(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/products",
        json={"gtin": gtin14("0000000000002"), "name": "x", "colour": "red"},
        headers=bearer(world.brand_a),
    )
    body = assert_problem(r, 422, "/problems/invalid-input")
    assert [e["field"] for e in body["errors"]] == ["colour"]


async def test_bad_gtin_check_digit(client: httpx.AsyncClient, world: World) -> None:
    good = gtin14("0400638133393")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    r = await client.post(
        "/v1/products", json={"gtin": bad, "name": "x"}, headers=bearer(world.brand_a)
    )
    body = assert_problem(r, 422, "/problems/invalid-gtin")
    assert body["errors"][0]["field"] == "gtin"
    assert "check digit" in body["detail"]


async def test_oversized_body_by_content_length(client: httpx.AsyncClient, world: World) -> None:
    big = {"gtin": gtin14("0000000000003"), "name": "x", "attributes": {"a": "y" * 300_000}}
    r = await client.post("/v1/products", json=big, headers=bearer(world.brand_a))
    assert_problem(r, 413, "/problems/payload-too-large")


async def test_oversized_streamed_body(client: httpx.AsyncClient, world: World) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"gtin": "00000000000030", "name": "x", "attributes": {"a": "'
        for _ in range(300):
            yield b"y" * 1000
        yield b'"}}'

    r = await client.post(
        "/v1/products",
        content=chunks(),
        headers={**bearer(world.brand_a), "content-type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "/problems/payload-too-large")


async def test_unknown_path_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "/problems/not-found")
    assert_problem(await client.put("/healthz"), 405, "/problems/method-not-allowed")


async def test_duplicate_gtin_is_a_conflict(client: httpx.AsyncClient, world: World) -> None:
    # The owner registering its GTIN again; another brand's attempt is refused before any
    # look-up (test_products: gtin-not-assigned, whether or not the GTIN is held).
    payload = {"gtin": world.product_a["gtin"], "name": "again"}
    r = await client.post("/v1/products", json=payload, headers=bearer(world.brand_a))
    assert_problem(r, 409, "/problems/already-exists")


async def test_an_unexpected_error_reveals_nothing(client: httpx.AsyncClient, app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals at /srv/db password=hunter2")

    r = await client.get("/boom")
    body = assert_problem(r, 500, "/problems/internal")
    assert "hunter2" not in r.text
    assert "Traceback" not in r.text
    assert body["detail"] == "internal error"


@pytest.mark.parametrize("slug", ["invalid-gtin", "not-found", "malformed-json", "unauthenticated"])
async def test_problem_types_are_documented(client: httpx.AsyncClient, slug: str) -> None:
    r = await client.get(f"/problems/{slug}")
    assert r.status_code == 200
    assert "<h1>" in r.text


async def test_an_unknown_problem_type_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/problems/nope"), 404, "/problems/not-found")
