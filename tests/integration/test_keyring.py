"""An API process's keyring and listener against a real PostgreSQL: changes made behind
their back are learnt by an incremental look (nothing reopened), and a listener whose
connection is ended listens again and says so through /readyz."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
from fastapi import FastAPI

from tests.support.keys import issued_with_key, revoke_unheard
from tests.support.world import World
from transparency.domain.signing_keys import KeyStatus
from transparency.runtime.keyring import KeyRing
from transparency.runtime.notifications import APPLICATION_NAME, Listener


async def test_a_revocation_made_behind_the_keyrings_back_is_learnt_incrementally(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    _, key_id = await issued_with_key(client, world, 2)
    keyring: KeyRing = app.state.lifespan_state["keyring"]
    pool: asyncpg.Pool = app.state.lifespan_state["pool"]
    before = keyring.get(key_id)
    assert before is not None
    assert before.status is KeyStatus.ACTIVE

    await revoke_unheard(pool, key_id)
    await keyring.load(pool)

    after = keyring.get(key_id)
    assert after is not None
    assert after.status is KeyStatus.REVOKED
    assert after.private_key is before.private_key  # known: its status changed, not reopened


async def test_a_listener_whose_connection_is_ended_listens_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    listener: Listener = app.state.lifespan_state["listener"]
    pool: asyncpg.Pool = app.state.lifespan_state["pool"]
    listeners = "select array_agg(pid) from pg_stat_activity where application_name = $1"
    (first,) = await pool.fetchval(listeners, APPLICATION_NAME)
    assert (await client.get("/readyz")).status_code == 200

    await pool.execute("select pg_terminate_backend($1::int)", first)
    deadline = time.monotonic() + 20
    # Between the old backend's end and the new one's start no row matches (array_agg of
    # nothing is NULL), and the listener may not have noticed yet: wait for a new pid.
    while True:
        pids = await pool.fetchval(listeners, APPLICATION_NAME) or []
        if listener.ready and pids and first not in pids:
            break
        assert time.monotonic() < deadline, "the listener did not listen again"
        await asyncio.sleep(0.05)

    (second,) = pids
    assert second != first
    assert (await client.get("/readyz")).status_code == 200
