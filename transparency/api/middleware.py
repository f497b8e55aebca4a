"""Pure ASGI middleware: request ids, access logs and metrics; the body size limit."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transparency.api.metrics import Metrics
from transparency.api.problems import internal_error, problem
from transparency.domain.errors import PayloadTooLarge
from transparency.runtime import logs

log = logging.getLogger("transparency.access")
errors = logging.getLogger("transparency.errors")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Request ids are unique, not secret: a random prefix per process and a counter are enough,
# and cost no system call per request (uuid4 reads the kernel's random source each time).
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


class RequestContext:
    """Give every request an id (X-Request-ID), log it once, and time it per route."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(Headers(scope=scope).get("x-request-id", ""))
        token = logs.request_id.set(rid)
        status = 500
        started = time.perf_counter()
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            errors.exception("unhandled error")
            if response_started:
                raise
            await internal_error()(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            record(self.metrics, scope["method"], scope["path"], template, status, elapsed)
            logs.request_id.reset(token)


def request_id(given: str) -> str:
    """The id of a request that came with X-Request-ID ``given`` (kept if it is sane)."""
    return given if _REQUEST_ID.fullmatch(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def record(
    metrics: Metrics, method: str, path: str, route: str, status: int, elapsed: float
) -> None:
    """Count and time an answered request, and log it (under the request id in context)."""
    metrics.observe(method, route, status, elapsed)
    if log.isEnabledFor(logging.INFO):  # spare the record's fields when it is off
        log.info(
            "request",
            extra={
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "ms": round(elapsed * 1000, 2),
            },
        )


class BodyLimit:
    """Refuse bodies larger than ``max_bytes``, by Content-Length or as they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int, large: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        self.large = large or {}  # path suffix -> its own limit (file uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next(
            (n for suffix, n in self.large.items() if scope["path"].endswith(suffix)),
            self.default_max,
        )
        too_large = f"request body is over the limit of {limit} bytes"
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            # Out here the app's exception handlers are not reached: answer directly.
            await problem(PayloadTooLarge(too_large))(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(too_large)
            return message

        await self.app(scope, limited, send)
