"""The embedded PostgreSQL (pgserver), used when DATABASE_URL is unset.

Its data lives under ``<data_dir>/pg``. pgserver stops the server when the last process
that opened it exits, so Ctrl-C on ``transparency serve`` stops both.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class AlreadyRunning(Exception):
    """Another ``transparency serve`` holds this data directory."""


@contextmanager
def exclusive(data_dir: Path, name: str = "serve") -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir`` for as long as the block runs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.lock"
    handle: IO[str] = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunning(
            f"another `transparency {name}` (pid {holder}) is already using {data_dir.resolve()}"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def start(data_dir: Path) -> str:
    """Start (or join) the embedded server and return a connection URL for it."""
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir on import, which warns without
        # XDG_RUNTIME_DIR and falls back to /tmp: harmless here.
        warnings.simplefilter("ignore", UserWarning)
        from pgserver.postgres_server import get_server

    logging.getLogger("pgserver").setLevel(logging.WARNING)

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pg"
    _forget_dead_holders(pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    uri: str = server.get_uri()
    return uri


def _forget_dead_holders(pgdata: Path) -> None:
    """Drop processes that died without saying so (kill -9) from pgserver's holder list.

    pgserver stops PostgreSQL when its last holder exits; a holder that was killed stays on
    the list for ever, and PostgreSQL would then never be stopped again.
    """
    import psutil

    holders = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(holders.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        holders.write_text(json.dumps(alive))


def master_key_file(data_dir: Path) -> Path:
    """``<data_dir>/master.key``, made (mode 0600) with a fresh key if it does not exist."""
    from transparency.envelope import MasterKey

    path = data_dir / "master.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as handle:
        handle.write(MasterKey.generate_text() + "\n")
    return path
