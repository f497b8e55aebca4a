"""What every error answer is: RFC 9457 application/problem+json with a stable type."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_FIELDS = {"type", "title", "status", "detail", "request_id"}


def assert_problem(r: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    """``r`` is a problem of this status and type, with every field and its request id."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["type"] == type_
    assert body["request_id"] == r.headers["x-request-id"]
    return body
