"""The embedded PostgreSQL (pgserver), used when DATABASE_URL is unset.

Its data lives under ``<data_dir>/pg``. pgserver stops the server when the last process
that opened it exits, so Ctrl-C on ``transparency serve`` stops both.

PostgreSQL's stock settings suit a small machine of long ago: with 128 MB of shared buffers
backends wrote out dirty pages themselves in the middle of claims, and 4 MB of WAL buffers
filled up under load. ``transparency.conf`` (included from postgresql.conf) sizes them for
this machine; a change takes effect at once when this process is the server's only user,
else at the server's next start.
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
    if _tune(pgdata) and _holders(pgdata) == [os.getpid()]:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made per binary

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
        server.ensure_postgres_running()  # starts it again, and follows the new postmaster
    uri: str = server.get_uri()
    return uri


TUNING_FILE = "transparency.conf"


def tuning(memory_bytes: int) -> dict[str, str]:
    """Settings for a server sharing a machine of ``memory_bytes`` with the service."""
    shared = min(max(memory_bytes // 4, 128 << 20), 1 << 30)  # a quarter, 128 MB to 1 GB
    return {
        "shared_buffers": f"{shared >> 20}MB",
        "wal_buffers": "64MB",
        "max_wal_size": "4GB",  # fewer checkpoints (and full-page writes) during bulk work
        "checkpoint_timeout": "15min",
    }


def _tune(pgdata: Path) -> bool:
    """Write the tuning file (and its include); True when it changed."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    text = "".join(f"{k} = '{v}'\n" for k, v in tuning(memory).items())
    path = pgdata / TUNING_FILE
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    owner = pgdata.stat()
    path.write_text(text)
    os.chown(path, owner.st_uid, owner.st_gid)  # PostgreSQL may run as its own user
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{TUNING_FILE}'\n"
    if include not in conf.read_text():
        with conf.open("a") as handle:
            handle.write(include)
    return True


def _forget_dead_holders(pgdata: Path) -> None:
    """Drop processes that died without saying so (kill -9) from pgserver's holder list.

    pgserver stops PostgreSQL when its last holder exits; a holder that was killed stays on
    the list for ever, and PostgreSQL would then never be stopped again.
    """
    import psutil

    pids = _holders(pgdata)
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        (pgdata / _HOLDERS).write_text(json.dumps(alive))


_HOLDERS = ".handle_pids.json"


def _holders(pgdata: Path) -> list[int]:
    """The processes pgserver counts as the server's users."""
    try:
        pids = json.loads((pgdata / _HOLDERS).read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int)] if isinstance(pids, list) else []


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
