"""``scanner verify``: each code found is asked to POST /v1/verify, one JSON line per code."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from scanner import cli
from scanner.__main__ import main
from scanner.client import Client
from tests.support.station import CODES

KEYS = {"file", "text", "verdict", "warnings", "product"}
ANSWER = {
    "verdict": "suspicious",
    "code": CODES[0],
    "product": {"gtin": "09506000134352", "name": "Green tea"},
    "unit": {"state": "shipped"},
    "warnings": ["scanned_in_many_places"],
}


def verify(
    paths: list[Path],
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    region: str | None = None,
) -> tuple[cli.VerifySummary, list[dict[str, object]], list[str], list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    out, err = io.StringIO(), io.StringIO()
    with Client("http://api.test", transport=httpx.MockTransport(record)) as client:
        summary = cli.verify_files(paths, client, out=out, err=err, region=region)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return summary, lines, err.getvalue().splitlines(), requests


def test_one_line_per_code_with_the_verdict(images: dict[str, Path]) -> None:
    summary, lines, errors, requests = verify(
        [images["qr"], images["blank"]], lambda r: httpx.Response(200, json=ANSWER), region="FR"
    )
    assert summary == cli.VerifySummary(codes=1, unreadable=0, api_errors=0)
    assert errors == []
    assert lines == [
        {
            "file": str(images["qr"]),
            "text": CODES[0],
            "verdict": "suspicious",
            "warnings": ["scanned_in_many_places"],
            "product": ANSWER["product"],
        }
    ]
    (request,) = requests
    assert json.loads(request.content) == {"scan": f"]Q1{CODES[0]}", "region": "FR"}


def test_every_code_of_an_image_is_verified(images: dict[str, Path]) -> None:
    summary, lines, _, requests = verify(
        [images["two"]], lambda r: httpx.Response(200, json=ANSWER)
    )
    assert summary.codes == 2
    assert sorted(str(line["text"]) for line in lines) == sorted(CODES[1:3])
    assert len(requests) == 2


def test_an_api_error_and_a_bad_image_are_one_stderr_line_each(images: dict[str, Path]) -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        body = {"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": ""}
        return httpx.Response(429, json=body, headers={"Retry-After": "30"})

    summary, lines, errors, _ = verify([images["bad"], images["qr"]], limited)
    assert summary == cli.VerifySummary(codes=1, unreadable=1, api_errors=1)
    assert lines == []
    assert errors[0] == f"scanner: {images['bad']}: truncated PNG header"
    assert errors[1].startswith(f"scanner: {images['qr']}: {CODES[0]}: ")
    assert "429" in errors[1]


def test_exit_statuses_without_an_api(
    images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = "http://127.0.0.1:9"  # the discard port: nothing listens there
    assert main(["verify", str(images["blank"]), "--api", unreachable]) == 1
    assert main(["verify", str(images["bad"]), "--api", unreachable]) == 2
    assert main(["verify", str(images["qr"]), "--api", unreachable]) == 2
    assert capsys.readouterr().err.count("scanner: ") == 2
