"""Reading the API's answers, for the commands that call it outside locust (prepare, the
invariants): one JSON object, or one line that says what came back instead."""

from __future__ import annotations

from typing import Any

import httpx

from loadtest.errors import LoadTestError


def json_object(r: httpx.Response, error: type[LoadTestError]) -> dict[str, Any]:
    """The answer's JSON object; ``error`` naming the request if it is anything else."""
    where = f"{r.request.method} {r.request.url}"
    try:
        body = r.json()
    except ValueError as exc:
        raise error(f"{where}: the answer is not JSON") from exc
    if not isinstance(body, dict):
        raise error(f"{where}: expected a JSON object, got {body!r:.200}")
    return body


def problem_text(r: httpx.Response) -> str:
    """A problem response's type and detail; else the start of the body, on one line."""
    try:
        body = r.json()
        return f"{body['type']}: {body['detail']}"
    except (ValueError, KeyError, TypeError):
        return r.text[:300].replace("\n", " ")
