"""Talking to the app in-process: the lifespan state an ASGI server would hand each request,
and an httpx client through ``ASGITransport``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


def with_lifespan_state(app: FastAPI, state: Mapping[str, Any]) -> ASGIApp:
    """What an ASGI server does after the lifespan: hand each request a copy of its state."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = dict(state)
        await app(scope, receive, send)

    return asgi


def make_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=with_lifespan_state(app, app.state.lifespan_state), raise_app_exceptions=False
    )
    return httpx.AsyncClient(transport=transport, base_url="http://test")
