"""The GS1-Conformant resolver (GS1-Conformant Resolver Standard 1.2.0) at the Digital
Link paths: ``/01/{gtin}[/22/..][/10/..][/21/..]``, compressed URIs (``/ARHKVAdpQg``) and
``/.well-known/gs1resolver``.

Each answer carries CORS headers (2.2) and a ``Link`` header to the linkset, also when
redirecting; errors are problems with their status (400 for a URI that is no Digital
Link, 404 for a link type the identifier has no link of), never a 200 page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from transparency.api import problems
from transparency.api.deps import Pool, SettingsDep, customer_limit
from transparency.api.pages.routes import error_page
from transparency.domain import resolver as r
from transparency.domain.errors import (
    CustomerChecksBusy,
    NotFound,
    RateLimited,
    TransparencyError,
)
from transparency.services import resolver

METHODS = "GET, HEAD, OPTIONS"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Link, Location",
}
_PREFLIGHT = {
    **CORS,
    "Allow": METHODS,
    "Access-Control-Allow-Methods": METHODS,
    "Access-Control-Allow-Headers": "Accept, Accept-Language",
    "Access-Control-Max-Age": "86400",
}
# The answer depends on these headers and on the brand's links, which change any time.
_VARY = {"Vary": "Accept, Accept-Language", "Cache-Control": "no-store"}


def _error(request: Request, exc: TransparencyError) -> Response:
    # A phone over its budget opened a label: it gets the page that says how long to wait,
    # as on the verdict page; a client that asks for JSON gets the problem.
    person = "json" not in request.headers.get("accept", "")
    if person and isinstance(exc, RateLimited | CustomerChecksBusy):
        answer: Response = error_page(request, exc)
    else:
        answer = problems.problem(exc)
    answer.headers.update(CORS)
    return answer


ResolverRoute = problems.page_route(_error)
router = APIRouter(tags=["resolver"], include_in_schema=False, route_class=ResolverRoute)
# Compressed URIs are one path segment: matched after every other route (app.py).
compressed_router = APIRouter(tags=["resolver"], include_in_schema=False, route_class=ResolverRoute)


def _raw(request: Request) -> tuple[str, str]:
    """The path as sent, still percent-encoded, and the raw query string."""
    # Some servers (httpx's ASGI transport) leave the query on raw_path.
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.split(b"?", 1)[0].decode("latin-1")
    return path, request.scope.get("query_string", b"").decode("latin-1")


def _respond(request: Request, answer: resolver.Answer) -> Response:
    headers = {
        **CORS,
        **_VARY,
        "Link": r.link_header(
            answer.anchor, context=answer.linkset is not None, same_as=answer.same_as
        ),
    }
    head = request.method == "HEAD"
    if answer.linkset is not None:
        body = json.dumps(answer.linkset).encode()
        headers["Content-Length"] = str(len(body))
        return Response(b"" if head else body, 200, headers, media_type=r.LINKSET_MEDIA_TYPE)
    assert answer.location is not None
    headers["Location"] = answer.location
    return Response(status_code=307, headers=headers)


def _preflight() -> Response:
    return Response(status_code=204, headers=_PREFLIGHT)


@router.api_route("/01/{rest:path}", methods=["GET", "HEAD"])
async def resolve(request: Request, pool: Pool, settings: SettingsDep) -> Response:
    """Any GS1 Digital Link URI on a GTIN: a redirect to its best link, or its linkset.

    Each resolution is a query made for an anonymous client, so it takes a token of the
    customer budget, as a customer check does (a phone that follows the default redirect
    to the verdict page spends two)."""
    await customer_limit(request)
    path, query = _raw(request)
    answer = await resolver.resolve(
        pool,
        root=settings.public_url,
        path=path,
        query=query,
        accept=request.headers.get("accept"),
        accept_language=request.headers.get("accept-language"),
    )
    return _respond(request, answer)


@router.options("/01/{rest:path}")
async def resolve_options() -> Response:
    return _preflight()


@router.api_route("/.well-known/gs1resolver", methods=["GET", "HEAD"])
async def description(request: Request, settings: SettingsDep) -> Response:
    """The resolver description file (GS1-Conformant Resolver 1.2.0, section 3)."""
    found: Mapping[str, Any] = r.description(settings.public_url, "Transparency")
    body = json.dumps(found).encode()
    headers = {**CORS, "Content-Length": str(len(body))}
    content = b"" if request.method == "HEAD" else body
    return Response(content, 200, headers, media_type="application/json")


@router.options("/.well-known/gs1resolver")
async def description_options() -> Response:
    return _preflight()


def serve_compressed(app: FastAPI) -> None:
    """Answer compressed URIs (``/ARHKVAdpQg``) on paths no route knows.

    A compressed URI is one path segment, which a route would have to match with a
    catch-all: every single-segment path, routes added later included. As the router's
    fallback it is tried only once every route has declined; what does not decompress
    is still the router's 404.
    """
    not_found = app.router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        segment = scope.get("path", "")[1:]
        if scope["type"] != "http" or not resolver.looks_compressed(segment):
            await not_found(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await _compressed(request, segment)
        except TransparencyError as exc:
            response = _error(request, exc)
        await response(scope, receive, send)

    app.router.default = default


async def _compressed(request: Request, segment: str) -> Response:
    if request.method == "OPTIONS":
        return _preflight()
    if request.method not in ("GET", "HEAD"):
        raise NotFound("no such path")
    await customer_limit(request)
    _, query = _raw(request)
    answer = await resolver.resolve_compressed(
        request.state.pool,
        root=request.app.state.settings.public_url,
        segment=segment,
        query=query,
        accept=request.headers.get("accept"),
        accept_language=request.headers.get("accept-language"),
    )
    return _respond(request, answer)
