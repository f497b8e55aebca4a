"""A database that is not there for a moment (a PostgreSQL restart, found by the load
harness's restart-postgres fault) is a 503 problem to retry, never a 500."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from transparency.api import problems
from transparency.db.pool import open_pool
from transparency.domain.errors import Unavailable


async def test_a_new_connection_to_a_missing_socket_is_unavailable(tmp_path: Path) -> None:
    # A restarting embedded PostgreSQL removes its unix socket: connecting raised
    # FileNotFoundError, which is no ConnectionError, and became a 500.
    gone = f"postgresql://nobody@/postgres?host={tmp_path / 'no-such-dir'}"
    async with open_pool(gone, min_size=0, max_size=1, acquire_timeout=2) as pool:
        with pytest.raises(Unavailable, match="cannot be reached"):
            await pool.fetchval("select 1")


async def test_a_connection_ended_under_a_query_is_a_503_problem() -> None:
    # What asyncpg raised for pooled connections the server ended mid-query during a
    # restart under load ("cannot switch to state 12; another operation is in progress").
    app = FastAPI()
    problems.install(app)

    @app.get("/ended")
    async def ended() -> None:
        raise asyncpg.InternalClientError("cannot switch to state 12")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/ended")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/unavailable"
    assert "retry-after" in r.headers
