"""The load test's commands against a stub of the API: prepare, a short locust run, errors.

The stub is a stdlib HTTP server in a thread on 127.0.0.1 with in-memory state, answering
just the endpoints ``loadtest`` uses, with the contract's shapes and rules: each code
passes once, a wrong tag is ``forged``, the customer check returns a verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.__main__ import main
from loadtest.data import LoadData, read, write
from loadtest.errors import DataError, PrepareError
from loadtest.prepare import prepare
from tests.support.loadtest_stub import ADMIN, StubApi, StubState


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
