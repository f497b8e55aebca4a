"""Helpers for the station tests: codes, QR photos, a fake verification API on loopback
and a station run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import qrcode

from scanner.claims import ClaimQueue
from tests.support import paths
from transparency.domain.codes import Payload, sign_transparency

ROOT = paths.ROOT
GTIN = "09506000134352"
SHIPMENT = "SHIP-1"


def tp_code(serial: int) -> str:
    return sign_transparency(Payload(key_id=1, serial=serial), b"test secret for the station")


CODES = [tp_code(n) for n in range(1, 9)]


def qr_image(text: str, module: int = 4) -> np.ndarray[Any, np.dtype[np.uint8]]:
    code = qrcode.QRCode(box_size=1, border=4)
    code.add_data(text)
    matrix = np.where(np.array(code.get_matrix(), dtype=bool), 0, 255).astype(np.uint8)
    return np.kron(matrix, np.ones((module, module), dtype=np.uint8))


def drop_photo(folder: Path, name: str, text: str) -> None:
    """Write a QR photo under a dot name and rename it into place, as a camera should."""
    partial = folder / f".{name}"
    assert cv2.imwrite(str(partial), qr_image(text))
    partial.rename(folder / name)


class FakeApi:
    """The service's two verification endpoints on 127.0.0.1, for real subprocesses.

    Records every request as it arrives; a claim is decided on arrival and a repeat of its
    Idempotency-Key gets the first answer, as the real service does. ``delay`` holds each
    claim's answer back, so a test can kill the station while a claim is in flight.
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.claims: list[tuple[str, str]] = []  # (idempotency key, scan)
        self.verified: list[dict[str, Any]] = []
        self.first_answer: dict[str, dict[str, Any]] = {}
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def answer(self, path: str, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if path == "/v1/verify":
            with self.lock:
                self.verified.append(body)
            return {
                "verdict": "authentic",
                "code": body["scan"].removeprefix("]Q1"),
                "product": {"gtin": GTIN, "name": "Green tea"},
                "unit": {"state": "shipped"},
                "warnings": [],
            }
        assert key is not None
        with self.lock:
            self.claims.append((key, body["scan"]))
            answer = self.first_answer.setdefault(
                key, {"result": "pass", "reason": None, "unit": None, "first_shipped": None}
            )
        time.sleep(self.delay)
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                answer = api.answer(self.path, self.headers.get("Idempotency-Key"), body)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a killed station leaves its connection half-read: that is the point


def start_station(
    api: FakeApi, photos: Path, queue_path: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                sys.executable, "-m", "scanner", "station",
                "--api", api.url, "--key", "station-key", "--gtin", GTIN,
                "--shipment", SHIPMENT, "--watch", str(photos), "--queue", str(queue_path),
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def sent(queue_path: Path) -> int:
    if not queue_path.exists():
        return 0
    with ClaimQueue(queue_path) as queue:
        return sum(claim.state == "sent" for claim in queue.claims())


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
