"""A stub of the API for the load test's commands.

The stub is a stdlib HTTP server in a thread on 127.0.0.1 with in-memory state, answering
just the endpoints ``loadtest`` uses, with the contract's shapes and rules: each code
passes once, a wrong tag is ``forged``, the customer check returns a verdict.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from transparency.domain import codes
from transparency.domain.errors import InvalidCode

ADMIN = "admin-key"
SECRET = b"stub-secret-0123456789abcdef0123"


@dataclass
class StubState:
    keys: dict[str, str] = field(default_factory=lambda: {ADMIN: "admin"})
    gtins: dict[str, str] = field(default_factory=dict)  # product id -> gtin
    batches: dict[str, list[str]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # code -> gtin
    shipped: set[str] = field(default_factory=set)
    serial: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, scan: str, gtin: str) -> dict[str, Any]:
        try:
            parsed = codes.parse(scan)
        except InvalidCode:
            return _fail("malformed")
        if not codes.verify_tag(parsed, SECRET):
            return _fail("forged")
        with self.lock:
            if scan not in self.units:
                return _fail("unknown")
            if self.units[scan] != gtin:
                return _fail("wrong_product")
            if scan in self.shipped:
                return {**_fail("already_shipped"), "first_shipped": {"at": None}}
            self.shipped.add(scan)
        return {"result": "pass", "reason": None, "unit": {"gtin": gtin}, "first_shipped": None}


def _fail(reason: str) -> dict[str, Any]:
    return {"result": "fail", "reason": reason, "unit": None, "first_shipped": None}


class StubApi(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as locust's client expects
    server: StubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _role(self) -> str | None:
        token = self.headers.get("authorization", "").removeprefix("Bearer ")
        return self.server.state.keys.get(token)

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/v1/verify":
            code = parse_qs(url.query).get("code", [""])[0]
            self._send(200, {"verdict": "authentic" if code in state.shipped else "suspicious"})
        elif parts[:2] == ["v1", "code-batches"] and self._role() == "brand":
            batch = state.batches[parts[2]]
            if len(parts) == 4:
                rows = io.StringIO()
                out = csv.writer(rows)
                out.writerow(["code", "symbol", "human_readable", "url", "lot", "expiry"])
                out.writerows([c, c, c, f"http://x/t/{c}", "", ""] for c in batch)
                self._send(200, rows.getvalue())
            else:
                # Running on the first poll, so prepare has to wait for it.
                state.polls[parts[2]] = state.polls.get(parts[2], 0) + 1
                self._send(200, {"status": "done" if state.polls[parts[2]] > 1 else "running"})
        else:
            self._send(404, {"title": "not found"})

    def do_POST(self) -> None:
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        parts = self.path.strip("/").split("/")
        role = self._role()
        new_id = str(uuid.uuid4())
        if self.path in ("/v1/brands", "/v1/sites", "/v1/api-keys") and role != "admin":
            self._send(401, {"title": "admin key required"})
        elif self.path == "/v1/brands":
            key = f"brand-{new_id}"
            state.keys[key] = "brand"
            self._send(201, {"brand": {"id": new_id}, "api_key": {"key": key}})
        elif self.path == "/v1/sites":
            self._send(201, {"id": new_id, "name": body["name"]})
        elif self.path == "/v1/api-keys":
            key = f"station-{new_id}"
            state.keys[key] = body["role"]
            self._send(201, {"key": key})
        elif self.path == "/v1/products" and role == "brand":
            state.gtins[new_id] = body["gtin"]
            self._send(201, {"id": new_id, "gtin": body["gtin"], "name": body["name"]})
        elif parts[:2] == ["v1", "products"] and parts[3:] == ["code-batches"] and role == "brand":
            issued = []
            for _ in range(body["count"]):
                state.serial += 1
                issued.append(codes.sign_transparency(codes.Payload(1, state.serial), SECRET))
            state.units.update(dict.fromkeys(issued, state.gtins[parts[2]]))
            state.batches[new_id] = issued
            self._send(202, {"id": new_id}, {"location": f"/v1/code-batches/{new_id}"})
        elif self.path == "/v1/fulfilment/verifications" and role == "station":
            self._send(200, state.claim(body["scan"], body["gtin"]))
        elif self.path == "/v1/fulfilment/verifications/batch" and role == "station":
            results = [state.claim(item["scan"], item["gtin"]) for item in body["items"]]
            self._send(200, {"results": results})
        else:
            self._send(404, {"title": "not found"})


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    state: StubState


@pytest.fixture
def stub() -> Iterator[tuple[str, StubState]]:
    server = StubServer(("127.0.0.1", 0), StubApi)
    server.state = StubState()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
