"""The ``transparency`` command: serve, migrate, new-key.

Each subcommand is a plain function; ``__main__`` alone turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from pydantic import SecretStr

from transparency.api.ratelimit import SHARED_FILE_ENV
from transparency.db import api_keys
from transparency.db.migrate import migrate
from transparency.db.pool import connect
from transparency.domain.api_keys import new_api_key, parse_api_key
from transparency.runtime import logs
from transparency.runtime.envelope import MasterKey
from transparency.runtime.settings import Settings, get_settings, load_master_key
from transparency.serve import embedded, jobs, supervisor


class CliError(Exception):
    """A failure to report to the operator as one line."""


class Stopped(BaseException):
    """SIGTERM arrived: unwind as Ctrl-C does (a BaseException, so no handler swallows it)."""


def _stop(signum: int, _: FrameType | None) -> None:
    raise Stopped


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM (systemd's stop, ``docker stop``) into an orderly exit.

    Python's default for SIGTERM ends the process on the spot, with no ``finally`` and no
    atexit hook, and the embedded PostgreSQL is stopped by pgserver's atexit hook: it was
    left running, orphaned. uvicorn handles SIGTERM itself while it serves, then raises it
    again once it has shut down, so it reaches this handler too; the supervisor of several
    API processes handles it, and returns, likewise. Either way ``serve`` returns, and the
    interpreter's exit stops PostgreSQL.
    """
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    except Stopped:
        return
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolve(settings: Settings) -> Settings:
    """Settings with the API process count chosen, a usable database_url (the given one, or
    the embedded server's) and, with the embedded server and no master key given, the data
    directory's key file.

    Unset, the process count is one per core with the embedded server: PostgreSQL shares
    the cores, and a refused scan, which needs no query, can only use the core PostgreSQL
    is not using if another API process is there. With DATABASE_URL it is one, since every
    process adds a pool of connections to a server that others share too.
    """
    if settings.database_url is not None:
        return settings.model_copy(update={"workers": settings.workers or 1})
    workers = settings.workers or embedded.available_cores()
    pool = settings.pool_max_size
    if "pool_max_size" not in settings.model_fields_set:  # not chosen: sized for these cores
        pool = max(embedded.pool_size(workers), settings.pool_min_size)
    # Every API process's pool and its notification listener, and room for the CLI.
    try:
        processes = len(_ports(settings)) * workers
        uri = embedded.start(settings.data_dir, connections=processes * (pool + 2) + 20)
    except embedded.NotInstalled as exc:
        raise CliError(str(exc)) from None
    update: dict[str, object] = {
        "database_url": SecretStr(uri),
        "pool_max_size": pool,
        "workers": workers,
    }
    if settings.master_key is None and settings.master_key_file is None:
        update["master_key_file"] = embedded.master_key_file(settings.data_dir)
    return settings.model_copy(update=update)


@contextmanager
def only_server(settings: Settings) -> Iterator[None]:
    """One `serve` per embedded data directory (an external database allows many)."""
    if settings.database_url is not None:
        yield
        return
    try:
        with embedded.exclusive(settings.data_dir):
            yield
    except embedded.AlreadyRunning as exc:
        raise CliError(str(exc)) from None


async def prepare(settings: Settings) -> tuple[list[str], str | None]:
    """Migrate, then make sure an admin key exists.

    Returns the migrations applied and, when this call created the first admin key, that
    key: the caller shows it once. Only its hash is stored.
    """
    assert settings.database_url is not None
    conn = await connect(settings.database_url.get_secret_value())
    try:
        applied = await migrate(conn)
        if settings.admin_key is not None:
            token = parse_api_key(settings.admin_key.get_secret_value())
            assert token is not None  # validated by Settings
            await api_keys.upsert_admin(conn, token, "TRANSPARENCY_ADMIN_KEY")
            return applied, None
        token = new_api_key()
        created = await api_keys.bootstrap_admin(conn, token)
        return applied, (str(token) if created else None)
    finally:
        await conn.close()


def _ports(settings: Settings) -> list[int]:
    """The ports `serve` listens on: its own, and the stations' if they have one (each
    served by ``workers`` API processes)."""
    return [settings.port] + ([settings.station_port] if settings.station_port else [])


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)
    with only_server(settings):
        for port in _ports(settings):
            if not _port_free(settings.host, port):
                raise CliError(f"port {port} on {settings.host} is already in use")
        if settings.master_key is not None or settings.master_key_file is not None:
            # A master key given that cannot be read: one line now, before a database is
            # started for nothing (the embedded one's own key is made in resolve()).
            load_master_key(settings)
        resolved = resolve(settings)
        _, first_key = asyncio.run(prepare(resolved))
        base = f"http://{settings.host}:{settings.port}"
        processes = f"{resolved.workers} API process{'es' if resolved.workers != 1 else ''}"
        stations = ""
        if settings.station_port is not None:
            stations = (
                f"\nStations' port http://{settings.host}:{settings.station_port}  ({processes}"
                " of its own; the public's run only on CPU these leave)"
            )
        print(
            f"Transparency API on {base}  ({processes}; docs {base}/docs, ready {base}/readyz)"
            f"{stations}\nLabels point at {settings.public_url} (TRANSPARENCY_PUBLIC_URL)",
            flush=True,
        )
        if first_key is not None:
            print(framed_admin_key(first_key), flush=True)
        if resolved.workers == 1 and resolved.station_port is None:
            import uvicorn

            from transparency.api.app import create_app

            uvicorn.run(create_app(resolved), **_server_options(settings))
            return
        # Several processes share the port (a socket each, see supervisor.py); each builds its
        # app from the environment, so it gets the resolved database and master key, and their
        # metrics are pooled in one directory (Prometheus multiprocess mode). A bad master key
        # stops us here, once, rather than in every process.
        load_master_key(resolved)
        with tempfile.TemporaryDirectory(prefix="transparency-metrics-") as shared_dir:
            os.environ.update(_worker_environment(resolved, shared_dir))
            _serve_workers(resolved)


def framed_admin_key(key: str) -> str:
    """The first admin key in a frame, blank lines around it: one plain line of it was lost
    between `make serve`'s install output above and the servers' start-up logs below."""
    lines = [
        "Admin key, shown once: only its hash is stored, so keep it now.",
        "",
        f"    {key}",
        "",
        "The README's walkthrough takes it as ADMIN; lost, set TRANSPARENCY_ADMIN_KEY",
        "to a key from `transparency new-key` and start again.",
    ]
    width = max(map(len, lines))
    border = "+" + "-" * (width + 4) + "+"
    body = [f"|  {line.ljust(width)}  |" for line in lines]
    return "\n".join(["", border, *body, border, ""])


def _server_options(settings: Settings) -> dict[str, Any]:
    from transparency.serve.http import CoalescingHttpTools, Limits  # uvicorn: when serving

    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # httptools, a response sent whole, with read deadlines and a connection limit
        "http": functools.partial(
            CoalescingHttpTools,
            limits=Limits(
                header_seconds=settings.header_timeout_seconds,
                body_seconds=settings.body_timeout_seconds,
                max_connections=settings.max_connections,
            ),
        ),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        # uvicorn would take X-Forwarded-For from any loopback peer and overwrite the peer's
        # address with it; the app reads it itself, from TRANSPARENCY_TRUSTED_PROXIES only.
        "proxy_headers": False,
        # On SIGTERM, requests in flight get this long; then connections are closed.
        "timeout_graceful_shutdown": 30,
    }


def _serve_workers(settings: Settings) -> None:
    assert settings.workers is not None  # resolved
    options = _server_options(settings)
    if settings.station_port is None:
        groups = [supervisor.Group(options, settings.workers)]
    else:
        # A bulkhead: the stations' claims never share an event loop, nor the CPU's
        # priority, with what the public sends (bench_faults.py: four clients posting
        # refused photos raised the claims' p99 1.9-2.2x on one port, 1.2-2.0x with two).
        groups = [
            supervisor.Group(options, settings.workers, below_stations=True),
            supervisor.Group({**options, "port": settings.station_port}, settings.workers),
        ]
    try:
        supervisor.serve_processes(
            "transparency.api.app:from_environment", groups, job_process=True
        )
    except supervisor.StartupFailed as exc:
        raise CliError(str(exc)) from exc


def _worker_environment(resolved: Settings, shared_dir: str) -> dict[str, str]:
    """What every API process reads at start: the resolved database and pool size, and
    ``shared_dir`` for what they pool (metrics, the customer rate limit's buckets)."""
    assert resolved.database_url is not None
    env = {
        "DATABASE_URL": resolved.database_url.get_secret_value(),
        "TRANSPARENCY_POOL_MAX_SIZE": str(resolved.pool_max_size),
        "PROMETHEUS_MULTIPROC_DIR": shared_dir,
        SHARED_FILE_ENV: os.path.join(shared_dir, "customer-buckets"),
        "TRANSPARENCY_RUN_JOBS": "false",  # the job process runs them (serve/jobs.py)
    }
    if resolved.master_key is None and resolved.master_key_file is not None:
        env["TRANSPARENCY_MASTER_KEY_FILE"] = str(resolved.master_key_file)
    return env


def migrate_command(settings: Settings) -> None:
    resolved = resolve(settings).model_copy(update={"admin_key": None})
    applied, _ = asyncio.run(prepare(resolved))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


def jobs_command(settings: Settings) -> None:
    """Run the job process alone, at lower priority, against the database of DATABASE_URL
    (an embedded database belongs to the `serve` that started it, which runs its own)."""
    if settings.database_url is None:
        raise CliError("`jobs` needs DATABASE_URL: `serve` runs the jobs of its embedded database")
    logs.configure(settings.log_level, settings.log_format)
    load_master_key(settings)  # a bad master key: one line now, not a failure per job
    jobs.lower_priority()
    asyncio.run(jobs.run(settings))


def new_key() -> None:
    print(new_api_key())


def new_master_key() -> None:
    print(MasterKey.generate_text())


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="transparency", description="Run the Transparency API and manage its database."
    )
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="migrate and serve the API (embedded PostgreSQL by default)")
    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser(
        "jobs", help="run batch jobs only (API processes elsewhere: TRANSPARENCY_RUN_JOBS=false)"
    )
    sub.add_parser("new-key", help="print a fresh admin key for TRANSPARENCY_ADMIN_KEY")
    sub.add_parser("new-master-key", help="print a fresh key for TRANSPARENCY_MASTER_KEY")
    return root


def run(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "new-key":
        new_key()
        return
    if args.command == "new-master-key":
        new_master_key()
        return
    settings = get_settings()
    with sigterm_unwinds():
        if args.command == "serve":
            serve(settings)
        elif args.command == "jobs":
            jobs_command(settings)
        else:  # argparse admits no other command
            migrate_command(settings)
