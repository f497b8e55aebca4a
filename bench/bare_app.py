"""The ceiling for verification: a bare FastAPI app doing one primary-key lookup per request.

    .venv/bin/python bench/bare_app.py --dsn postgresql://... --port 8001

POST /lookup {"scan": code} -> {"state": ...}: the least any claim over HTTP must do (parse
a JSON body, one asyncpg query on a pooled connection, a JSON answer), served the way
`transparency serve` is served: uvicorn, uvloop, httptools with each response sent in one
piece (transparency.serve.http), the same number of processes (--workers, like
TRANSPARENCY_WORKERS, each with its own socket), the same pool size (--pool: the bench
passes the embedded default, as the service under test runs) and the same pool reset.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import uvicorn
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field

from transparency.serve.supervisor import Group, serve_processes


class LookupIn(BaseModel):
    scan: str = Field(max_length=4096)


def pool_of(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.state.pool
    return pool


# At module level: the app's annotations are strings, resolved in this module's namespace.
Pool = Annotated[asyncpg.Pool, Depends(pool_of)]


async def _keep(_: asyncpg.Connection) -> None:
    """No session state to reset: one round trip fewer per request."""


def create_app(dsn: str, pool_size: int) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # The service's pool settings (transparency/db/pool.py): no reset statement when a
        # connection goes back to the pool, so the ceiling is as lean as the service.
        async with asyncpg.create_pool(dsn, min_size=2, max_size=pool_size, reset=_keep) as pool:
            yield {"pool": pool}

    app = FastAPI(lifespan=lifespan)

    @app.post("/lookup")
    async def lookup(body: LookupIn, pool: Pool) -> dict[str, Any]:
        state = await pool.fetchval("select state from units where code = $1", body.scan)
        return {"state": state}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def from_environment() -> FastAPI:
    """The app of one of several processes: the DSN comes through the environment."""
    return create_app(os.environ["BARE_APP_DSN"], int(os.environ["BARE_APP_POOL"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool", type=int, default=20, help="connections per process")
    args = parser.parse_args()
    os.environ["BARE_APP_DSN"] = args.dsn
    os.environ["BARE_APP_POOL"] = str(args.pool)
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": args.port,
        "loop": "uvloop",
        # as the service: a response sent whole
        "http": "transparency.serve.http:CoalescingHttpTools",
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }
    if args.workers == 1:
        uvicorn.run(create_app(args.dsn, args.pool), **options)
    else:  # as `transparency serve` runs them: a socket each
        serve_processes("bare_app:from_environment", [Group(options, args.workers)])


if __name__ == "__main__":
    main()
