"""Several API processes on one port, each with its own listening socket (SO_REUSEPORT).

uvicorn's own supervisor shares one listening socket between its processes, and whichever
process wakes first accepts every connection that is waiting: a station's (or a proxy's)
burst of keep-alive connections can land on one process while the others idle, and stay
there. Measured on 2 cores: 32 connections opened together split 32/0, 28/4 or 6/26 between
two processes. With a socket per process and SO_REUSEPORT, the kernel spreads connections
over the processes by a hash of their addresses.

The supervisor starts ``count`` processes, each running uvicorn on its own socket; stops
them all (SIGTERM, so requests in flight finish) on SIGINT or SIGTERM; replaces one that
dies while serving; and raises ``StartupFailed`` if one cannot start, after stopping the rest.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

log = logging.getLogger("transparency.supervisor")

# uvicorn's exit status for a server that did not start (uvicorn.config.STARTUP_FAILURE).
STARTUP_FAILURE = 3
_STOP_SECONDS = 45  # beyond the servers' own graceful shutdown


class StartupFailed(Exception):
    """An API process could not start (its error is in its log)."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port that shares the port with its siblings."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


def _serve_one(factory: str, options: dict[str, Any]) -> None:
    """One API process: uvicorn on a socket of its own."""
    import uvicorn

    sock = listening_socket(options["host"], options["port"])
    server = uvicorn.Server(uvicorn.Config(factory, factory=True, **options))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def serve_processes(factory: str, count: int, options: dict[str, Any]) -> None:
    """Serve ``factory`` (``module:function`` making the ASGI app) from ``count`` processes
    until SIGINT or SIGTERM; ``options`` are uvicorn's (host and port included)."""
    # Holds the port while the processes start and restart; it never listens, so the
    # kernel hands it no connection.
    reserved = listening_socket(options["host"], options["port"])
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> BaseProcess:
        process = context.Process(target=_serve_one, args=(factory, options), daemon=False)
        process.start()
        return process

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start() for _ in range(count)]
    failed = False
    try:
        while not stop.wait(0.5):
            for n, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    failed = True
                    stop.set()
                    break
                log.warning("API process %s exited (%s); starting another", process.pid,
                            process.exitcode)  # fmt: skip
                processes[n] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()
        for process in processes:
            process.join(_STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reserved.close()
    if failed:
        raise StartupFailed("an API process failed to start (its error is logged above)")
