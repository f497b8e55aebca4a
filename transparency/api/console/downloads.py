"""The console's downloads are the API's own handlers, with the session standing for the key.

A browser cannot send the bearer key of an ``<a href>``; rather than a second way to make
codes, labels, rejection files or a report's photo, each API download handler is mounted
again here with its ``actor`` taken from the console session. Its query parameters (the
label layout and presets among them), validation and streaming stay the API's, whatever
they become.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter

from transparency.api.console.web import ConsoleRoute, SignedIn
from transparency.api.routes import codes, reports

Handler = Callable[..., Coroutine[Any, Any, Any]]


def with_session(endpoint: Handler) -> Handler:
    """``endpoint`` with its ``actor`` parameter resolved from the console session."""
    signature = inspect.signature(endpoint, eval_str=True)
    if "actor" not in signature.parameters:
        raise TypeError(f"{endpoint.__name__} names no actor to take from the session")
    parameters = [
        p.replace(annotation=SignedIn) if p.name == "actor" else p
        for p in signature.parameters.values()
    ]

    async def handler(**kwargs: Any) -> Any:
        return await endpoint(**kwargs)

    handler.__name__ = f"console_{endpoint.__name__}"
    handler.__doc__ = endpoint.__doc__
    handler.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return handler


router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)

for path, endpoint in (
    ("/batches/{batch_id}/codes.{kind}", codes.download_codes),
    ("/batches/{batch_id}/labels.{kind}", codes.download_labels),
    ("/batches/{batch_id}/rejections.csv", codes.import_rejections),
    ("/reports/{report_id}/photo", reports.photo),
):
    router.add_api_route(path, with_session(endpoint), methods=["GET"])
