"""The embedded PostgreSQL (pgserver), used when DATABASE_URL is unset.

Its data lives under ``<data_dir>/pg``. pgserver stops the server when the last process
that opened it exits (an atexit hook), so Ctrl-C or SIGTERM on ``transparency serve`` stops
both (``cli.sigterm_unwinds`` makes SIGTERM exit through that hook). pgserver is an extra
(``transparency[embedded]``), imported only when the server starts: an API given
DATABASE_URL runs without it.

PostgreSQL's stock settings suit a small machine of long ago: with 128 MB of shared buffers
backends wrote out dirty pages themselves in the middle of claims, and 4 MB of WAL buffers
filled up under load. ``transparency.conf`` (included from postgresql.conf) sizes them for
this machine (or its container), and allows the connections the API processes' pools
need. It is written before the server starts; when the server is already running (or was
just made), a change takes effect at once if this process is its only user, else at the
server's next start.
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
from typing import IO, Any


class AlreadyRunning(Exception):
    """Another ``transparency serve`` holds this data directory."""


class NotInstalled(Exception):
    """pgserver, which the embedded server needs, is not installed (it is an extra)."""


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


def start(data_dir: Path, connections: int = 100) -> str:
    """Start (or join) the embedded server and return a connection URL for it.

    ``connections``: how many the server must accept at once (at least 100).
    """
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir on import, which warns without
            # XDG_RUNTIME_DIR and falls back to /tmp: harmless here.
            warnings.simplefilter("ignore", UserWarning)
            from pgserver.postgres_server import get_server
            from pgserver.utils import PostmasterInfo
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "pgserver":
            raise  # one of pgserver's own imports failed: that error says more
        raise NotInstalled(
            "DATABASE_URL is unset and the embedded PostgreSQL is not installed: "
            "install transparency[embedded], or set DATABASE_URL"
        ) from None

    logging.getLogger("pgserver").setLevel(logging.WARNING)

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pg"
    _forget_dead_holders(pgdata)
    wanted = tuning(available_memory(), connections)
    fresh = not (pgdata / "PG_VERSION").exists()
    info = None if fresh else PostmasterInfo.read_from_pgdata(pgdata)
    running = info is not None and info.is_running()
    # Written before the server starts, the settings apply at once; only a new data
    # directory (made by the start) or a server already running needs a restart.
    changed = not fresh and _write_tuning(pgdata, wanted)
    server = get_server(pgdata, cleanup_mode="stop")
    if fresh:
        changed = _write_tuning(pgdata, wanted)
    if changed and (fresh or running):
        _restart_if_alone(server, pgdata)
    uri: str = server.get_uri()
    return uri


def _restart_if_alone(server: Any, pgdata: Path) -> None:
    """Restart the server to apply its settings, unless another process is using it."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made per binary

    with server._lock:  # pgserver's lock between processes: nobody joins or leaves meanwhile
        if _holders(pgdata) != [os.getpid()]:
            return  # the settings apply at the server's next start
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
        server.ensure_postgres_running()  # starts it again, and follows the new postmaster


TUNING_FILE = "transparency.conf"


def available_memory() -> int:
    """Physical memory, or the container's limit when it is lower (cgroup v2 or v1)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            memory = min(memory, int(text))
    return memory


def available_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, or the container's CPU quota
    (cgroup v2 ``cpu.max``: quota and period, or "max") when that is lower, rounded up."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()
    except (OSError, ValueError):
        return cores
    if quota.isdigit() and period.isdigit() and int(period) > 0:
        cores = min(cores, max(1, -(-int(quota) // int(period))))
    return cores


def pool_size(workers: int, cores: int | None = None) -> int:
    """Pool connections per API process when PostgreSQL shares this machine's cores.

    Each pooled connection is a PostgreSQL backend competing for the API processes' cores.
    With many, a burst of checks runs as many slow queries at once (the kernel shares the
    cores among them); with a few, checks wait their turn in the pool and each runs at full
    speed. Measured on 2 cores, two API processes, customer checks at 2,000/s: p99 7 ms
    with 4 connections each against 15 ms with 20 (median of 8 runs), and no fewer checks
    a second. Four per core in all, shared by the API processes, at least 4 each.
    """
    available = cores if cores is not None else available_cores()
    return max(4, 4 * available // workers)


def tuning(memory_bytes: int, connections: int = 100) -> dict[str, str]:
    """Settings for a server sharing ``memory_bytes`` with the service."""
    shared = min(max(memory_bytes // 4, 128 << 20), 1 << 30)  # a quarter, 128 MB to 1 GB
    return {
        "shared_buffers": f"{shared >> 20}MB",
        "wal_buffers": "64MB",
        "max_wal_size": "4GB",  # fewer checkpoints (and full-page writes) during bulk work
        "checkpoint_timeout": "15min",
        "max_connections": str(max(connections, 100)),
    }


def _write_tuning(pgdata: Path, settings: dict[str, str]) -> bool:
    """Write the tuning file (and its include); True when it changed."""
    text = "".join(f"{k} = '{v}'\n" for k, v in settings.items())
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
    from transparency.runtime.envelope import MasterKey

    path = data_dir / "master.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as handle:
        handle.write(MasterKey.generate_text() + "\n")
    return path
