"""The fast lane: lean routes reached by their exact method and path, ahead of the stack.

Every request to a FastAPI app first passes FastAPI's telemetry check and Starlette's stack
(server errors, FastAPI's exception telemetry and body limit, our middleware, exception
handling, an exit stack), then is matched against the routes in order. For a refused scan
that is more than the check itself: calling the app directly, about 100 µs a request, of
which the fast lane saves 40-55 on this machine's cores.

The lane wraps each lean route (see ``lean.py``) in what it needs of that stack: the app's
own middleware (request id, access log, metrics, body limit), in the same order, and the
app's exception handlers, looked up by class as Starlette's ``ExceptionMiddleware`` does, so
every answer, error or not, is the one the full path gives (a test holds them equal).
Unhandled errors are answered by ``RequestContext`` as on the full path.

It stays shut when FastAPI's native OpenTelemetry is configured at start, or a root path
is set: those need the full stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRouter
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from transparency.api.fastpath.lean import LeanRoute


class LaneApp(FastAPI):
    """A FastAPI app that serves the routes given to ``open_lane`` through the fast lane."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lane: dict[tuple[str, str], tuple[LeanRoute, ASGIApp]] = {}

    def open_lane(self, routers: Iterable[APIRouter]) -> None:
        """Serve the lean routes of ``routers`` (without path parameters) in the lane.

        Call at start-up, once every middleware is added.
        """
        if self.root_path or _telemetry_configured(self):
            self._lane = {}
            return
        lane = {}
        for router in routers:
            for route in router.routes:
                if isinstance(route, LeanRoute) and not route.param_convertors:
                    stack = _wrapped(self, route)
                    for method in route.methods or ():
                        lane[method, route.path] = (route, stack)
        self._lane = lane

    @property
    def lane(self) -> set[tuple[str, str]]:
        """The (method, path) pairs served in the lane."""
        return set(self._lane)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            found = self._lane.get((scope["method"], scope["path"]))
            if found is not None:
                route, stack = found
                # What routing would have set: the app for Request.app, the route for the
                # metrics' and logs' route template.
                scope["app"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                await stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _wrapped(app: FastAPI, route: LeanRoute) -> ASGIApp:
    stack = _answering(route, app.exception_handlers)
    for cls, args, kwargs in reversed(app.user_middleware):
        stack = cls(stack, *args, **kwargs)
    return stack


def _answering(route: LeanRoute, handlers: Mapping[Any, Callable[..., Any]]) -> ASGIApp:
    """The endpoint as an ASGI app, its exceptions answered by the app's handlers.

    What Starlette's ExceptionMiddleware and FastAPI's request_response do for a route,
    without their per-request exit stacks and wrappers: a lean endpoint opens nothing that
    needs closing after its response.
    """
    if any(not isinstance(key, type) for key in handlers):
        raise ValueError("the fast lane maps exceptions by class, not by status code")
    endpoint = route.endpoint

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
            if handler is None:
                raise  # RequestContext answers it (500) and logs it, as on the full path
            if is_async_callable(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)

    return app


def _telemetry_configured(app: FastAPI) -> bool:
    # FastAPI (0.165 on) traces requests when an OpenTelemetry provider is configured; the
    # check is private, so an app without it counts as not tracing.
    telemetry = getattr(app, "_native_telemetry", None)
    enabled = getattr(telemetry, "enabled", None)
    return bool(enabled()) if callable(enabled) else False
