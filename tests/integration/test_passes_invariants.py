"""``loadtest.invariants.check`` against the real app and PostgreSQL: a clean run holds its
three invariants, and each kind of loss or double pass breaks the one that names it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection

import httpx
import pytest
from fastapi import FastAPI

from loadtest import invariants
from loadtest.errors import CheckError
from loadtest.invariants import COUNTED, ONCE, SHIPPED, Invariant
from tests.support.asgi import with_lifespan_state
from tests.support.world import World, bearer, expect, issue_codes

API = "http://test"


class LoopTransport(httpx.BaseTransport):
    """A synchronous transport for a client in a worker thread: each request goes to the app
    on the test's event loop (httpx's ASGITransport serves async clients only)."""

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = httpx.ASGITransport(
            app=with_lifespan_state(app, app.state.lifespan_state),
            raise_app_exceptions=False,
        )
        self.loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def answer() -> tuple[int, httpx.Headers, bytes]:
            response = await self.inner.handle_async_request(request)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = asyncio.run_coroutine_threadsafe(answer(), self.loop).result()
        return httpx.Response(status, headers=headers, content=content)


async def check(
    app: FastAPI, station: str, prefix: str, passed: Collection[str]
) -> dict[str, Invariant]:
    transport = LoopTransport(app, asyncio.get_running_loop())
    found = await asyncio.to_thread(
        invariants.check, API, station, prefix, passed, transport=transport
    )
    assert [i.name for i in found] == [SHIPPED, ONCE, COUNTED]
    return {i.name: i for i in found}


async def claim(client: httpx.AsyncClient, world: World, code: str, shipment: str) -> None:
    r = await client.post(
        "/v1/fulfilment/verifications",
        json={"scan": code, "gtin": world.product_a["gtin"], "shipment_id": shipment},
        headers=bearer(world.station),
    )
    assert r.json()["result"] == "pass", r.text


def run_prefix() -> str:
    return f"lt-{uuid.uuid4().hex[:8]}-"


async def test_a_clean_run_holds_every_invariant(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    codes = [row["code"] for row in await issue_codes(client, world, 4)]
    for n, code in enumerate(codes):
        await claim(client, world, code, f"{prefix}w{n % 2}-{n:06d}")
    await claim(client, world, codes[0], f"{prefix}w0-000000")  # a retry: the first answer

    # As the harness saw them: the retry's pass too, and one code typed in lower case.
    found = await check(app, world.station, prefix, [*codes, codes[0], codes[1].lower()])

    assert all(i.ok for i in found.values()), found
    assert found[SHIPPED].detail == f"all 4 units the harness saw pass are shipped under {prefix!r}"
    assert found[ONCE].detail == (
        f"4 units shipped in 4 (unit, shipment) pairs under {prefix!r},"
        " 1 passes repeated for the same shipment (retries)"
    )


async def test_a_pass_never_recorded_breaks_the_first(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    shipped, never = (row["code"] for row in await issue_codes(client, world, 2))
    await claim(client, world, shipped, f"{prefix}1")

    found = await check(app, world.station, prefix, [shipped, never])

    assert not found[SHIPPED].ok
    assert found[SHIPPED].detail.startswith("1 of the 2 units the harness saw pass are not")
    assert never in found[SHIPPED].detail
    assert shipped not in found[SHIPPED].detail
    assert found[ONCE].ok


async def test_a_pass_the_harness_never_saw_breaks_the_count(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    told, untold = (row["code"] for row in await issue_codes(client, world, 2))
    await claim(client, world, told, f"{prefix}1")
    await claim(client, world, untold, f"{prefix}1")  # its answer "lost" on the way back

    found = await check(app, world.station, prefix, [told])

    assert found[SHIPPED].ok
    assert found[ONCE].ok
    assert not found[COUNTED].ok
    assert found[COUNTED].detail.startswith(f"the service passed 2 units under {prefix!r}")
    assert untold in found[COUNTED].detail


async def test_a_unit_passed_twice_breaks_the_second(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    prefix = run_prefix()
    (row,) = await issue_codes(client, world, 1)
    await claim(client, world, row["code"], f"{prefix}1")
    await expect(
        await client.post(
            "/v1/fulfilment/reversals",
            json={"scan": row["code"], "shipment_id": f"{prefix}1"},
            headers=bearer(world.station),
        ),
        200,
    )
    await claim(client, world, row["code"], f"{prefix}2")

    found = await check(app, world.station, prefix, [row["code"]])

    assert not found[ONCE].ok
    assert found[ONCE].detail.startswith(
        f"1 units shipped in 2 (unit, shipment) pairs under {prefix!r}; in more than one"
    )
    assert row["code"] in found[ONCE].detail
    assert found[SHIPPED].ok


async def test_more_passes_than_a_page_are_all_read(
    app: FastAPI, client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invariants, "PAGE", 2)
    prefix = run_prefix()
    codes = [row["code"] for row in await issue_codes(client, world, 5)]
    for n, code in enumerate(codes):
        await claim(client, world, code, f"{prefix}{n}")

    found = await check(app, world.station, prefix, codes)

    assert all(i.ok for i in found.values()), found


async def test_a_refusal_is_one_clear_error(app: FastAPI, world: World) -> None:
    with pytest.raises(CheckError, match="401 /problems/unauthenticated"):
        await check(app, "tpk_aaaaaaaaaaaaaaaa_" + "b" * 32, run_prefix(), [])
    with pytest.raises(CheckError, match="422 /problems/shipment-prefix-too-short"):
        await check(app, world.station, "lt-", [])


def test_no_answer_is_one_clear_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(CheckError, match=r"GET http://test/v1/fulfilment/passes/summary: no"):
        invariants.check(API, "key", "lt-run-", [], transport=httpx.MockTransport(refuse))
