"""Several API processes on a port, each with its own listening socket (SO_REUSEPORT).

uvicorn's own supervisor shares one listening socket between its processes, and whichever
process wakes first accepts every connection that is waiting: a station's (or a proxy's)
burst of keep-alive connections can land on one process while the others idle, and stay
there. Measured on 2 cores: 32 connections opened together split 32/0, 28/4 or 6/26 between
two processes. With a socket per process and SO_REUSEPORT, the kernel spreads connections
over the processes by a hash of their addresses.

The supervisor starts a ``Group`` of processes for each port, each running uvicorn on its
own socket, and (``job_process``) one that runs the batch jobs (jobs.py). With a station
port (``TRANSPARENCY_STATION_PORT``), stations' fulfilment has a group of its own, and the
public port's group runs below it (``workers.below_stations``): whatever the public sends,
however fast, its processes only get the CPU the stations leave. A process
that exits without ever serving, before all have started (its app, settings or database
failed), stops them all and raises ``StartupFailed``; any other that dies (a signal killed
it, or it had served) is replaced, after a pause that doubles (up to a minute) while
replacements keep dying. SIGINT or SIGTERM stops them all (SIGTERM: requests in flight
finish). Each process dies with the supervisor, even if the supervisor is killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from transparency.runtime.workers import below_stations, die_with_parent, name_process

log = logging.getLogger("transparency.serve.supervisor")

API_NAME = b"transp-api"  # what ps and top show; the job process is "transp-jobs"
_STOP_SECONDS = 45  # beyond the servers' own graceful shutdown


class StartupFailed(Exception):
    """An API (or the job) process could not start (its error is in its log)."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port that shares the port with its siblings (the address
    family chosen as uvicorn chooses it: IPv6 for an address with a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


@dataclass(frozen=True)
class Group:
    """``count`` API processes on one port (``options`` are uvicorn's, host and port
    included); ``below_stations``: run as ``workers.below_stations`` says, to make way for
    another group's."""

    options: dict[str, Any]
    count: int
    below_stations: bool = False


def _serve_one(factory: str, group: Group, parent: int, started: Event) -> None:
    """One API process of ``group``: uvicorn on a socket of its own; ``started`` once it
    serves."""
    import uvicorn

    die_with_parent(parent, signal.SIGTERM)  # requests in flight get their answers
    if group.below_stations:
        below_stations()
    name_process(API_NAME)  # once lowered, as jobs.lower_priority does

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                started.set()

    options = group.options
    sock = listening_socket(options["host"], options["port"])
    # Ctrl-C reaches every process of the group; uvicorn shuts down on it, then raises it
    # again, and each API process printed that KeyboardInterrupt's trace on the way out.
    with contextlib.suppress(KeyboardInterrupt):
        Server(uvicorn.Config(factory, factory=True, **options)).run(sockets=[sock])


def _run_jobs(parent: int, started: Event) -> None:
    """The job process (jobs.py), with the settings the API processes have."""
    from transparency.runtime import logs
    from transparency.runtime.settings import get_settings
    from transparency.serve import jobs

    die_with_parent(parent, signal.SIGTERM)  # a job in hand stops at a lease's boundary
    jobs.lower_priority()
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(jobs.run(settings, started=started.set))


class _Child:
    def __init__(self, context: Any, target: Callable[..., None], *args: Any) -> None:
        self.target, self.args = target, args
        self.started: Event = context.Event()
        self.process: BaseProcess = context.Process(
            target=target, args=(*args, os.getpid(), self.started)
        )
        self.process.start()

    def again(self, context: Any) -> _Child:
        return _Child(context, self.target, *self.args)


def serve_processes(factory: str, groups: Sequence[Group], *, job_process: bool = False) -> None:
    """Serve ``factory`` (``module:function`` making the ASGI app) from each group's
    processes until SIGINT or SIGTERM. With ``job_process``, one more process runs the
    batch jobs (jobs.py), replaced like the others when it dies."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True  # a plain flag: a handler must take no lock its thread may hold

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Hold the ports while the processes start and restart; they never listen, so the
    # kernel hands them no connection.
    reserved = [listening_socket(g.options["host"], g.options["port"]) for g in groups]
    children: list[_Child] = []
    failed = serving = False
    failure = ""
    pause, replaced_at = 1.0, 0.0
    try:
        children = [
            _Child(context, _serve_one, factory, group)
            for group in groups
            for _ in range(group.count)
        ]
        if job_process:
            children.append(_Child(context, _run_jobs))
        while not stopping:
            time.sleep(0.2)
            serving = serving or all(c.started.is_set() for c in children)
            for n, child in enumerate(children):
                if stopping or child.process.is_alive():
                    continue
                exitcode = child.process.exitcode or 0
                if not serving and not child.started.is_set() and exitcode > 0:
                    # It never served and exited on its own: the app, its settings or its
                    # database are wrong, and another start would fail alike. One killed by
                    # a signal, or one that served and then died while another was still
                    # starting, is replaced like any later death.
                    failed = stopping = True
                    failure = "an API" if child.target is _serve_one else "the job"
                    break
                what = "API" if child.target is _serve_one else "job"
                log.warning("%s process %s exited (%s); another starts in %.0f s",
                            what, child.process.pid, child.process.exitcode, pause)  # fmt: skip
                time.sleep(pause)
                if not stopping:
                    pause, replaced_at = min(pause * 2, 60.0), time.monotonic()
                    children[n] = child.again(context)
            if time.monotonic() - replaced_at > 60:  # a minute without a death: calm again
                pause = 1.0
    finally:
        for child in children:
            if child.process.is_alive():
                child.process.terminate()
        deadline = time.monotonic() + _STOP_SECONDS
        for child in children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                child.process.kill()
                child.process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in reserved:
            sock.close()
    if failed:
        raise StartupFailed(f"{failure} process failed to start (its error is logged above)")
