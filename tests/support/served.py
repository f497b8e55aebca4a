"""A real `transparency serve` in a subprocess, as a user runs it, and a free port for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    running: ClassVar[list[Served]] = []  # stopped after each test, even a failed one

    def __init__(self, data_dir: Path, port: int, **env: str) -> None:
        environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        environment.update(TRANSPARENCY_DATA_DIR=str(data_dir), TRANSPARENCY_PORT=str(port), **env)
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transparency", "serve"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        Served.running.append(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.finish()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("serve did not become ready")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=30)
        if self in Served.running:
            Served.running.remove(self)
        return self.proc.returncode, out, err

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGINT)
        return self.finish()
