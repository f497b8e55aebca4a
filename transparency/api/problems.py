"""The one place where errors become HTTP: RFC 9457 ``application/problem+json``.

Each domain error class has a stable ``type`` (``/problems/<slug>``, documented at that
path), a status, and a title. Anything unexpected becomes a 500 problem without details;
the traceback goes to the log, with the request id, never to the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response

from transparency.domain import errors as e
from transparency.runtime import logs

log = logging.getLogger("transparency.errors")

MEDIA_TYPE = "application/problem+json"

STATUS: dict[type[e.TransparencyError], int] = {
    e.TransparencyError: 500,
    e.InvalidInput: 422,
    e.InvalidGtin: 422,
    e.InvalidCode: 422,
    e.InvalidDigitalLink: 400,
    e.UnreadableImage: 422,
    e.ImageTooLarge: 413,
    e.ScanTimeout: 422,
    e.PayloadTooLarge: 413,
    e.RequestTimeout: 408,
    e.GtinNotAssigned: 422,
    e.ShipmentPrefixTooShort: 422,
    e.IdempotencyKeyReused: 422,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.SignInRequired: 401,
    e.CsrfRefused: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.IdempotencyKeyInUse: 409,
    e.AlreadyExists: 409,
    e.InvalidTransition: 409,
    e.NotReady: 409,
    e.LimitExceeded: 429,
    e.KeyRotationLimited: 429,
    e.RateLimited: 429,
    e.Unavailable: 503,
    e.Overloaded: 503,
    e.KeySpaceExhausted: 503,
    e.DatabaseBusy: 503,
    e.StatementTimeout: 503,
    e.TransactionTimeout: 503,
    e.RenderersBusy: 503,
    e.DecodersBusy: 503,
    e.CustomerChecksBusy: 503,
}

# Problems the web layer itself can meet, beyond the domain tree.
EXTRA_TYPES: dict[str, tuple[int, str, str]] = {
    "malformed-json": (400, "Malformed JSON", "The request body is not valid JSON."),
    "method-not-allowed": (405, "Method not allowed", "The path does not accept this method."),
    "internal": (500, "Internal error", "Something failed on our side; the request id is logged."),
}


def type_uri(slug: str) -> str:
    return f"/problems/{slug}"


def page_route(page: Callable[[Request, e.TransparencyError], Response]) -> type[APIRoute]:
    """A route class whose domain errors are answered by ``page`` (HTML, with the status
    ``status_of`` gives), not problem+json: the customer pages' and the console's."""

    class PageRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def page_handler(request: Request) -> Response:
                try:
                    return await handler(request)
                except e.TransparencyError as exc:
                    return page(request, exc)

            return page_handler

    return PageRoute


def status_of(exc: e.TransparencyError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": type_uri(slug),
        "title": title,
        "status": status,
        "detail": detail,
    }
    rid = logs.request_id.get()
    if rid is not None:
        body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(json.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem(exc: e.TransparencyError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, e.Unavailable | e.LimitExceeded | e.RateLimited):
        headers["Retry-After"] = str(exc.extra.pop("retry_after", 1))
    return _response(status_of(exc), exc.slug, exc.title, exc.detail, headers, **exc.extra)


def catalogue() -> dict[str, tuple[int, str, str]]:
    """slug -> (status, title, description) of every problem type this service answers."""
    found = {
        cls.slug: (STATUS.get(cls, 500), cls.title, (cls.__doc__ or "").strip())
        for cls in e.all_errors()
    }
    return {**found, **EXTRA_TYPES}


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


async def _domain(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.TransparencyError)
    return problem(exc)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errs = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errs):
        status, title, _desc = EXTRA_TYPES["malformed-json"]
        return _response(status, "malformed-json", title, "the request body is not valid JSON")
    fields = [{"field": _field(tuple(err["loc"])), "message": err["msg"]} for err in errs]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return problem(e.InvalidInput(detail, errors=fields))


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, e.TransparencyError):
        # FastAPI wraps errors raised while reading the body (our size limit) in a 400.
        return problem(exc.__cause__)
    if exc.status_code == 404:
        return problem(e.NotFound("no such path"))
    if exc.status_code == 405:
        status, title, _desc = EXTRA_TYPES["method-not-allowed"]
        return _response(status, "method-not-allowed", title, "method not allowed on this path")
    return _response(exc.status_code, "http", "HTTP error", str(exc.detail))


async def _unstorable(_: Request, exc: Exception) -> Response:
    # The safety net behind validation: a value PostgreSQL cannot store (a NUL character,
    # a number out of range) is the caller's input, not our failure.
    log.warning("unstorable value reached the database: %s", type(exc).__name__)
    return problem(e.InvalidInput("a value cannot be stored (out of range or invalid text)"))


async def _statement_timeout(_: Request, exc: Exception) -> Response:
    # statement_timeout (db/pool.py) cancelled it; the transaction rolled back whole.
    log.warning("statement cancelled: %s", exc)
    return problem(e.StatementTimeout("a database statement took too long; retry shortly"))


async def _transaction_timeout(_: Request, exc: Exception) -> Response:
    log.warning("transaction ended by idle_in_transaction_session_timeout: %s", exc)
    return problem(e.TransactionTimeout("a transaction was left idle too long; retry"))


async def _database_down(_: Request, exc: Exception) -> Response:
    log.warning("database unavailable", exc_info=exc)
    return problem(e.Unavailable("the database cannot be reached; retry shortly"))


def internal_error() -> Response:
    """The answer to an unexpected exception (logged by the caller, never shown)."""
    status, title, _desc = EXTRA_TYPES["internal"]
    return _response(status, "internal", title, "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.TransparencyError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(asyncpg.DataError, _unstorable)
    app.add_exception_handler(asyncpg.QueryCanceledError, _statement_timeout)
    app.add_exception_handler(asyncpg.IdleInTransactionSessionTimeoutError, _transaction_timeout)
    for db_down in (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        # Transient conflicts PostgreSQL resolves by cancelling one side: nothing was
        # changed, and a retry succeeds (claims lock in code order, so these are rare).
        asyncpg.DeadlockDetectedError,
        asyncpg.SerializationError,
        # asyncpg's state machine, when the server ended a pooled connection mid-query
        # ("cannot switch to state 12; another operation (2) is in progress", seen during
        # a PostgreSQL restart under load): the connection is dropped, a retry succeeds.
        asyncpg.InternalClientError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(db_down, _database_down)
    # Any other exception is caught by the RequestContext middleware, which still knows
    # the request id: it logs the traceback and answers with internal_error().
