"""A check never uses a keyring older than TRANSPARENCY_KEY_CACHE_SECONDS, even in a process
whose catch-ups have stopped (one starved of CPU, or whose catch-up fails while requests get
through) and whose notification of the revocation was lost.

Before, only the catch-ups kept the keyring current: such a process passed the units of a
signing key revoked elsewhere for as long as its catch-ups stayed behind, while its API-key
cache (``KeyCache.get``) already held its own bound at look-up.
"""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.support.keys import issued_with_key, revoke_unheard
from tests.support.world import World, claim
from transparency.runtime.keyring import KeyRing
from transparency.runtime.settings import Settings

BOUND = 0.5  # the least TRANSPARENCY_KEY_CACHE_SECONDS allows


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_cache_seconds": BOUND})


async def stop_catching_up() -> None:
    """End this process's catch-ups, as a process starved of CPU never gets to run them."""
    (catch_ups,) = [t for t in asyncio.all_tasks() if t.get_name() == "listener-catch-up"]
    catch_ups.cancel()
    await asyncio.wait([catch_ups])


async def test_a_check_in_a_process_behind_on_its_catch_ups_holds_the_bound(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    rows, key_id = await issued_with_key(client, world, 3)
    pool: asyncpg.Pool = app.state.lifespan_state["pool"]
    assert (await claim(client, world, rows[0]["code"]))["result"] == "pass"

    await stop_catching_up()
    await revoke_unheard(pool, key_id)
    await asyncio.sleep(BOUND * 1.2)

    refused = await claim(client, world, rows[1]["code"])
    assert (refused["result"], refused["reason"]) == ("fail", "key_revoked")
    r = await client.post("/v1/verify", json={"scan": rows[2]["code"]})
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == "key_revoked"


async def test_within_the_bound_a_check_asks_the_database_nothing_of_keys(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    """The bound costs a check nothing while the keyring is within it, as its catch-ups
    (twice per bound) keep it: a revocation unheard and not yet looked for is not seen."""
    _, key_id = await issued_with_key(client, world, 2)
    keyring: KeyRing = app.state.lifespan_state["keyring"]
    pool: asyncpg.Pool = app.state.lifespan_state["pool"]
    await stop_catching_up()
    keyring.max_age = 60  # so that a busy machine's pause cannot make the look due
    await keyring.load(pool)  # looked just now

    await revoke_unheard(pool, key_id)
    lookup = await keyring.current(pool)

    found = lookup(key_id)
    assert found is not None
    assert found.status.value == "active"  # not looked again: it was within the bound
