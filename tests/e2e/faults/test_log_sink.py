"""A log sink that stops reading does not stop the service.

`serve` writes a JSON line per request to stderr. Its stderr here is a pipe that nobody
reads: once 64 KiB of lines fill it (about 190 requests), a write to it blocks. The write
once happened on the event loop, and every later request of that process waited for ever.
Lines are now written by a thread of their own, and dropped (and counted) past a bound.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.served import free_port

REQUESTS = 1_000  # about 350 KB of access log: five pipes' worth


def test_requests_are_answered_while_nobody_reads_the_log(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        TRANSPARENCY_DATA_DIR=str(tmp_path / "data"), TRANSPARENCY_PORT=str(port),
        TRANSPARENCY_WORKERS="1", TRANSPARENCY_LOG_LEVEL="INFO",
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "transparency", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # never read until the end
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not become ready"
                time.sleep(0.2)
            # Unauthenticated: a 401 each, and an access-log line each.
            statuses = [http.get("/v1/products").status_code for _ in range(REQUESTS)]
        assert statuses == [401] * REQUESTS
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # reading now lets the writer go on
    assert proc.returncode == 0, err[-2000:]
    # Held while the pipe was full, written once it was read: none lost at this volume.
    assert err.count(b'"path": "/v1/products"') == REQUESTS
