"""The load test's commands against a stub of the API: prepare, a short locust run, errors.

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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from loadtest.__main__ import main
from loadtest.data import LoadData, read, write
from loadtest.errors import DataError, PrepareError, RunFailed
from loadtest.prepare import prepare
from loadtest.run import run
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


def test_prepare_makes_fresh_shipped_and_forged_codes(stub: tuple[str, StubState]) -> None:
    api, state = stub
    data = prepare(api, ADMIN, 50, shipped=5, forged=3)

    assert (len(data.codes), len(data.shipped), len(data.forged)) == (50, 5, 3)
    assert data.api == api
    assert state.keys[data.station_key] == "station"
    assert set(data.shipped) == state.shipped
    assert not state.shipped & set(data.codes)
    assert all(state.units[code] == data.gtin for code in data.codes)
    for forged in data.forged:
        assert state.claim(forged, data.gtin)["reason"] == "forged"


def test_the_data_file_round_trips(tmp_path: Path) -> None:
    data = LoadData("http://127.0.0.1:1", "k", "00000000000000", ("a", "b"), ("c",), ("d",))
    write(data, tmp_path / "data.json")
    assert read(tmp_path / "data.json") == data


@pytest.mark.parametrize("content", [None, "{}", "not json", '{"api": 1}'])
def test_a_bad_data_file_is_a_data_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=r"data\.json"):
        read(path)


def _refusing(status: int, on: str) -> httpx.MockTransport:
    """Answers like the API until a request to a path containing ``on``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if on in request.url.path:
            return httpx.Response(status, json={"title": "no"})
        return httpx.Response(201, json={"brand": {}, "api_key": {"key": "k"}, "id": "i",
                                         "gtin": "00000000000000", "key": "s"})  # fmt: skip

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "on", "message"),
    [
        (401, "/v1/brands", "expected 201, got 401"),
        (404, "/v1/sites", "expected 201, got 404"),
        (500, "code-batches", "expected 202, got 500"),
    ],
)
def test_prepare_names_the_request_the_api_refused(status: int, on: str, message: str) -> None:
    with pytest.raises(PrepareError, match=message) as caught:
        prepare("http://api.test", ADMIN, 10, transport=_refusing(status, on))
    assert on in str(caught.value)


def test_prepare_says_when_the_verification_endpoints_are_missing(
    stub: tuple[str, StubState], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = stub
    monkeypatch.setattr(StubApi, "do_POST", _no_verification(StubApi.do_POST))
    with pytest.raises(PrepareError, match="verification endpoints are not deployed"):
        prepare(api, ADMIN, 10)


def _no_verification(original: Any) -> Any:
    def do_post(self: StubApi) -> None:
        if self.path.startswith("/v1/fulfilment/"):
            self.rfile.read(int(self.headers["content-length"]))
            return self._send(404, {"title": "not found"})
        return original(self)  # type: ignore[no-any-return]

    return do_post


def test_a_connection_error_is_a_prepare_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(PrepareError, match="ConnectError"):
        prepare("http://api.test", ADMIN, 10, transport=httpx.MockTransport(refuse))


def test_main_turns_an_error_into_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--data", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loadtest: ")
    assert "missing.json" in err
    assert err.count("\n") == 1


def test_a_short_locust_run_passes_and_a_rerun_of_the_same_data_fails(
    stub: tuple[str, StubState], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    api, state = stub
    path = tmp_path / "data.json"
    write(prepare(api, ADMIN, 30_000), path)

    run(path, users=2, run_time="3s")
    out, err = capfd.readouterr()
    summary = out + err
    aggregated = next(line for line in summary.splitlines() if "Aggregated" in line)
    requests, failures = aggregated.split()[1:3]
    assert int(requests) > 20
    assert failures == "0(0.00%)"
    for name in ("verifications [forged]", "verifications/batch [100]", "/v1/verify?code="):
        assert name in summary
    assert len(state.shipped) > 20 + 100

    # Every code claimed above is claimed again: each fails already_shipped, and the run fails.
    with pytest.raises(RunFailed, match="locust exited with status 1"):
        run(path, users=2, run_time="1s")
    assert "already_shipped" in "".join(capfd.readouterr())
