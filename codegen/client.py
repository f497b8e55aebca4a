"""The API as codegen sees it: HTTP with a brand key, problems turned into CodegenError."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


class CodegenError(Exception):
    """A failure to report as one line (the API's problem type and detail, or ours)."""


class Api:
    def __init__(
        self, base_url: str, key: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        if not key:
            raise CodegenError("no API key: pass --key or set TRANSPARENCY_KEY")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(30.0, read=300.0),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        try:
            problem = response.json()
            kind = str(problem.get("type", "")).rsplit("/", 1)[-1] or "error"
            detail = problem.get("detail", response.reason_phrase)
        except ValueError:
            kind, detail = "http", f"HTTP {response.status_code}"
        raise CodegenError(f"{kind}: {detail}")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._check(self._http.request(method, path, **kwargs))
        except httpx.TransportError as exc:
            raise CodegenError(f"cannot reach the API at {self._http.base_url}: {exc}") from exc
        return response.json() if response.content else None

    def wait_for_batch(
        self, location: str, *, progress: Callable[[dict[str, Any]], None], poll: float = 0.5
    ) -> dict[str, Any]:
        while True:
            batch: dict[str, Any] = self.request("GET", location)
            progress(batch)
            if batch["status"] == "done":
                return batch
            if batch["status"] == "failed":
                raise CodegenError(f"batch {batch['id']} failed: {batch.get('error')}")
            time.sleep(poll)

    def download(self, path: str, out: Path) -> int:
        """Stream a file to ``out`` (written to a temporary name, renamed when complete)."""
        partial = out.with_name(out.name + ".part")
        size = 0
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()  # a problem's body is small, and _check reads it
                self._check(response)
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                        size += len(chunk)
        except httpx.TransportError as exc:
            raise CodegenError(f"download interrupted: {exc}") from exc
        partial.replace(out)
        return size
