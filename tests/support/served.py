"""A real `transparency serve` in a subprocess, as a user runs it, and a free port for it.

Its output is read as it comes, not only at the end: a served process logs a line per
request (about 350 bytes), and once 64 KiB of them (some 190 requests) filled an unread
pipe, the next log write blocked the process's event loop with it, and the next request
waited for ever (an httpx ReadTimeout after 30 s, on a machine busy enough that a test's
polling loop ran that long).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, ClassVar

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
        self.stations = int(env.get("TRANSPARENCY_STATION_PORT", port))  # stations' port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transparency", "serve"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._output: tuple[list[str], list[str]] = ([], [])
        self._readers = [
            threading.Thread(target=_drain, args=(stream, into), daemon=True)
            for stream, into in zip((self.proc.stdout, self.proc.stderr), self._output, strict=True)
        ]
        for reader in self._readers:
            reader.start()
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
        """Wait for serve and for every process that shares its output (its API processes
        and theirs), as ``communicate`` does: the output ends when the last one exits."""
        deadline = time.monotonic() + 30
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.proc.args, 30)
        self.proc.wait(max(0.0, deadline - time.monotonic()))
        out, err = ("".join(lines) for lines in self._output)
        if self in Served.running:
            Served.running.remove(self)
        return self.proc.returncode, out, err

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGINT)
        return self.finish()


def _drain(stream: IO[str] | None, into: list[str]) -> None:
    assert stream is not None
    with stream:
        for line in stream:  # until every process that holds the pipe has exited
            into.append(line)
