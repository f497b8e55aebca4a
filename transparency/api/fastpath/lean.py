"""Lean routes: the hot paths, documented by FastAPI, served without its per-request work.

A warehouse station checks every unit it ships, so a fulfilment check is the request this
service answers most. Through FastAPI's usual path a check spends more time in dependency
solving, body plumbing and response encoding than in the check itself (measured with
py-spy: about 0.11 ms a request on this machine's cores, more than the check). A
``LeanRoute`` keeps FastAPI for what it does once (routing table, OpenAPI) and hands each
request straight to its endpoint. The endpoint takes the ``Request`` and reads what it
needs through the same dependencies as every other route (``deps.station_key``,
``deps.get_context``) and ``read_body``, which validates with the route's pydantic model
and raises FastAPI's own ``RequestValidationError``; errors therefore go through the one
mapping in ``problems.py`` like any other route's.

What FastAPI cannot see in such a signature (the request body, headers) is declared with
``documented()``, so the OpenAPI schema (and the fuzzing built on it) stays complete.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from transparency.api.schemas import NO_NUL_ESCAPE
from transparency.domain.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

_REF = "#/components/schemas/{model}"
# Body models named by documented(), by schema name, for register_schemas().
_BODIES: dict[str, type[BaseModel]] = {}


class LeanRoute(APIRoute):
    """An APIRoute whose endpoint is ``async def (request) -> Response``, called directly.

    FastAPI asks ``get_route_handler()`` for the function that turns a request into a
    response (for the route, and again for each router that includes it); the usual one
    solves dependencies, validates and encodes. Here it is the endpoint itself.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return handler


async def read_body(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``; a bad body raises what FastAPI raises for one."""
    try:
        raw = await request.body()
    except ClientDisconnect as exc:
        raise InvalidInput("the request body was cut off") from exc
    if not _is_json(request.headers.get("content-type")):
        # As FastAPI does: a body of another type is not read as JSON (and a browser's
        # cross-site form, text/plain, cannot reach an endpoint without a preflight).
        error = {
            "type": "model_attributes_type",
            "loc": ("body",),
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": raw,
        }
        raise RequestValidationError([error])
    # Without a \u0000 escape the body holds no NUL: spare the models their walk through
    # every string (a 1,000-item batch is 2,000 of them).
    context = {NO_NUL_ESCAPE: b"\\u0000" not in raw}
    try:
        return model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        raise RequestValidationError(errors) from exc


async def read_query(request: Request, model: type[M]) -> M:
    """The query parameters as ``model``; bad ones raise what FastAPI raises for them."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = [{**err, "loc": ("query", *err["loc"])} for err in exc.errors()]
        raise RequestValidationError(errors) from exc


def _is_json(content_type: str | None) -> bool:
    """No type (read as JSON, as FastAPI does), application/json or application/*+json."""
    if not content_type:
        return True
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def documented(body: type[BaseModel] | None, *params: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a lean route: its JSON body (``body``), if any, and parameters
    (``header_doc``, ``query_docs``)."""
    extra: dict[str, Any] = {
        "responses": {
            "422": {
                "description": "The body or a parameter is invalid (RFC 9457 problem)",
                "content": {"application/problem+json": {"schema": {"type": "object"}}},
            }
        },
    }
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=body.__name__)}}},
        }
        _BODIES[body.__name__] = body
    if params:
        extra["parameters"] = list(params)
    return extra


def query_docs(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query parameters of ``model`` (flat fields), for ``documented()``."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema["properties"].items()
    ]


def register_schemas(app: FastAPI) -> None:
    """Add lean routes' body models to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in _BODIES.values():
            found = model.model_json_schema(ref_template=_REF)
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def read_header(request: Request, name: str, *, max_length: int) -> str | None:
    """An optional header, at most ``max_length`` characters (422 otherwise)."""
    value = request.headers.get(name)
    if value is not None and len(value) > max_length:
        error = {
            "type": "string_too_long",
            "loc": ("header", name.lower()),
            "msg": f"String should have at most {max_length} characters",
            "input": value,
        }
        raise RequestValidationError([error])
    return value


def header_doc(name: str, description: str, *, max_length: int) -> dict[str, Any]:
    """An optional header parameter, for ``documented()``."""
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", "maxLength": max_length},
    }
