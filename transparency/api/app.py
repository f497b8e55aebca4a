"""The app factory. The pool is born in the lifespan; nothing is created at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import asyncpg
from fastapi import FastAPI

from transparency import __version__
from transparency.api import problems
from transparency.api.metrics import Metrics
from transparency.api.middleware import BodyLimit, RequestContext
from transparency.api.routes import admin, ops, products
from transparency.db.pool import open_pool
from transparency.settings import Settings


class State(TypedDict):
    pool: asyncpg.Pool


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``, whose database_url must already be resolved."""
    if settings.database_url is None:
        raise ValueError("create_app needs settings with a database_url")
    dsn = settings.database_url.get_secret_value()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with open_pool(
            dsn, min_size=settings.pool_min_size, max_size=settings.pool_max_size
        ) as pool:
            metrics.watch_pool(pool)
            yield {"pool": pool}
            metrics.watch_pool(None)

    app = FastAPI(
        title="Transparency",
        version=__version__,
        description="Product serialization and verification.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    problems.install(app)
    for module in (ops, admin, products):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, metrics=metrics)
    return app
