"""`transparency serve` as a user runs it: embedded PostgreSQL, Ctrl-C, restart, one at a time."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from pydantic import SecretStr

from tests.support import paths
from tests.support.photos import qr_png
from tests.support.served import Served, free_port
from tests.support.world import bearer
from transparency.domain.api_keys import new_api_key
from transparency.runtime.envelope import MasterKey
from transparency.runtime.settings import Settings
from transparency.runtime.workers import bulk_cpus
from transparency.serve import embedded, jobs
from transparency.serve.cli import resolve
from transparency.serve.supervisor import API_NAME

# Whether setting $1 is $2; sizes compare as sizes (1024MB is 1GB).
SAME_SETTING = (
    "select case when $2 ~ '^[0-9]+[kMG]B$'"
    " then pg_size_bytes(current_setting($1)) = pg_size_bytes($2)"
    " else current_setting($1) = $2 end"
)


def pg_value(data_dir: Path, query: str, *args: object) -> Any:
    """One value from the embedded PostgreSQL that `serve` runs for ``data_dir``."""

    async def fetch() -> Any:
        conn = await asyncpg.connect(f"postgresql://postgres:@/postgres?host={data_dir / 'pg'}")
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.fixture
def data_dir(data_home: Path) -> Path:
    return data_home


def test_serve_first_start_restart_and_exclusivity(data_dir: Path) -> None:
    first = Served(data_dir, free_port())
    seconds = first.wait_ready()
    assert seconds < 30
    cores = embedded.available_cores()
    # Unset, TRANSPARENCY_WORKERS is one API process per core (one runs inside serve itself).
    assert len(api_processes(first)) == (cores if cores > 1 else 0)

    code, _, err = Served(data_dir, first.port).finish()  # what a second `make serve` does
    assert code == 1
    assert "already using" in err

    code, out, err = first.stop()
    assert code == 0, err
    keys = re.findall(r"tpk_\w+", out)
    assert len(keys) == 1  # shown once
    admin = keys[0]
    # framed, after the start line, so the install output and the logs do not bury it
    lines = out.splitlines()
    at = next(n for n, line in enumerate(lines) if admin in line)
    frame = lines[at - 3 : at + 5]
    assert frame[0] == frame[-1] == "+" + "-" * (len(frame[0]) - 2) + "+", "\n".join(frame)
    assert all(line.startswith("|") and line.endswith("|") for line in frame[1:-1])
    assert "Admin key, shown once" in frame[1]
    assert lines[0].startswith("Transparency API on")
    assert f"http://127.0.0.1:{first.port}" in out
    assert f"Labels point at http://127.0.0.1:{first.port} " in out
    assert f"({cores} API process" in out
    assert admin not in err  # shown once, on stdout, never logged
    assert not (data_dir / "pg" / "postmaster.pid").exists()  # PostgreSQL stopped too

    again = Served(data_dir, free_port())
    again.wait_ready()
    auth = bearer(admin)
    r = httpx.post(f"{again.url}/v1/brands", json={"name": "Acme"}, headers=auth)
    assert r.status_code == 201, r.text
    code, out, _ = again.stop()
    assert code == 0
    assert "Admin key" not in out  # same data: the first key still stands

    last = Served(data_dir, free_port())
    last.wait_ready()
    r = httpx.post(f"{last.url}/v1/brands", json={"name": "Acme"}, headers=auth)
    assert r.status_code == 409  # the brand made before the restart is still there
    last.stop()


def test_admin_key_from_the_environment(data_dir: Path) -> None:
    key = str(new_api_key())
    served = Served(data_dir, free_port(), TRANSPARENCY_ADMIN_KEY=key)
    served.wait_ready()
    r = httpx.post(f"{served.url}/v1/sites", json={"name": "DC1"}, headers=bearer(key))
    assert r.status_code == 201, r.text
    _, out, err = served.stop()
    assert "Admin key" not in out
    assert key not in out + err


@pytest.mark.parametrize("which", ["port", "stations' port"])
def test_a_port_in_use_is_one_clear_line(data_dir: Path, which: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        if which == "port":
            code, _, err = Served(data_dir, port).finish()
        else:
            served = Served(data_dir, free_port(), TRANSPARENCY_STATION_PORT=str(port))
            code, _, err = served.finish()
    assert code == 1
    assert err.strip() == f"transparency: port {port} on 127.0.0.1 is already in use"


def test_several_workers_share_the_port_and_pool_their_metrics(
    data_dir: Path, tmp_path: Path
) -> None:
    key = str(new_api_key())
    served = Served(
        data_dir, free_port(), TRANSPARENCY_ADMIN_KEY=key, TRANSPARENCY_WORKERS="2",
        TMPDIR=str(tmp_path),
    )  # fmt: skip
    served.wait_ready()
    auth = bearer(key)
    processes: set[str] = set()  # request ids start with a random prefix per process
    scrapes = 0
    while len(processes) < 2 and scrapes < 200:  # each scrape on a new connection
        r = httpx.get(f"{served.url}/metrics", headers=auth)
        assert r.status_code == 200, r.text
        scrapes += 1
        processes.add(r.headers["x-request-id"][:16])
    assert len(processes) == 2, "the second API process never answered"
    assert len(list(tmp_path.glob("transparency-metrics-*"))) == 1

    text = httpx.get(f"{served.url}/metrics", headers=auth).text

    def value(pattern: str) -> float:
        found = re.search("(?m)^" + pattern + r" (\S+)$", text)
        assert found is not None, pattern
        return float(found.group(1))

    counted = value(
        r'transparency_http_requests_total\{method="GET",route="/metrics",status="200"\}'
    )
    assert counted == scrapes  # every process's requests, whichever answers
    # Both processes' pools, summed, each sized for PostgreSQL sharing these cores.
    assert value("transparency_db_pool_max") == 2 * embedded.pool_size(2)

    # Connections are spread over the processes by the kernel: a listening socket each
    # (SO_REUSEPORT), not one shared socket whose accept queue goes to whichever process
    # wakes first (under load, all of a burst of connections to one process).
    port = f"{served.port:04X}"
    listening = [
        line for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[1].endswith(f":{port}") and line.split()[3] == "0A"
    ]  # fmt: skip
    assert len(listening) == 2, listening
    connections = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(32)]
    per_process: Counter[str] = Counter()
    for connection in connections:
        with connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            head = connection.recv(65536).decode("latin-1")
            found = re.search(r"(?i)x-request-id: (\w+)", head)
            assert found is not None, head
            per_process[found.group(1)[:16]] += 1
    assert len(per_process) == 2, per_process
    assert min(per_process.values()) >= 4, per_process

    code, _, err = served.stop()
    assert code == 0, err
    assert not list(tmp_path.glob("transparency-metrics-*"))
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_api_processes_share_each_customers_budget(data_dir: Path) -> None:
    """The customer rate limit holds for the service, not per process: a client whose
    connections reach both processes still gets its burst once."""
    served = Served(
        data_dir, free_port(), TRANSPARENCY_WORKERS="2",
        TRANSPARENCY_CUSTOMER_BURST="5", TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1",
    )  # fmt: skip
    served.wait_ready()
    statuses: list[int] = []
    processes: set[str] = set()
    for _ in range(16):  # a new connection each time: the kernel spreads them
        with httpx.Client(base_url=served.url) as http:
            r = http.get("/v1/verify", params={"code": "TP-not-a-code"})
        statuses.append(r.status_code)
        processes.add(r.headers["x-request-id"][:16])
    assert len(processes) == 2, "every request reached the same process"
    assert statuses.count(200) == 5, statuses
    assert statuses.count(429) == 11, statuses
    code, _, err = served.stop()
    assert code == 0, err


def api_processes(served: Served) -> list[int]:
    """The pids of the API processes `serve` started (with several workers)."""
    return named(served.proc.pid, API_NAME)


def named(parent: int, name: bytes) -> list[int]:
    """The processes ``parent`` spawned that call themselves ``name``, once every one of them
    has named itself (each does so first thing, but not before Python has started)."""
    deadline = time.monotonic() + 30
    while True:
        names = {}
        for pid in spawned_by(parent):
            with suppress(OSError):
                names[pid] = Path(f"/proc/{pid}/comm").read_bytes().strip()
        if all(n in (API_NAME, jobs.NAME) for n in names.values()):
            return [pid for pid, n in names.items() if n == name]
        assert time.monotonic() < deadline, names
        time.sleep(0.05)


def spawned_by(parent: int) -> list[int]:
    """The pids of the processes ``parent`` started with multiprocessing's spawn."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            spawned = "spawn_main" in (stat.parent / "cmdline").read_text()
        except OSError:
            continue
        if int(fields[1]) == parent and spawned:
            children.append(int(stat.parent.name))
    return children


def test_an_api_process_that_dies_is_replaced(data_dir: Path) -> None:
    served = Served(data_dir, free_port(), TRANSPARENCY_WORKERS="2")
    served.wait_ready()
    before = api_processes(served)
    assert len(before) == 2, before
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = api_processes(served)
        if before[0] not in now and len(now) == len(before):
            break
        time.sleep(0.2)
    assert before[0] not in now, now
    assert len(now) == len(before), now
    served.wait_ready()
    code, _, err = served.stop()
    assert code == 0, err


@pytest.mark.parametrize("victim", ["served", "starting"])
def test_a_process_killed_while_another_starts_is_replaced(tmp_path: Path, victim: str) -> None:
    port = free_port()
    code = (
        "from transparency.serve.supervisor import Group, serve_processes\n"
        "serve_processes('tests.support.supervised_app:app_factory',"
        f" [Group({{'host': '127.0.0.1', 'port': {port}, 'log_config': None}}, 2)])\n"
    )
    env = {**os.environ, "SUPERVISED_FIRST": str(tmp_path / "first")}
    supervisor = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=paths.ROOT)
    try:
        first = ""
        for _ in range(150):  # the first process serves; the second is still starting
            try:
                first = httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert first, "the first process never served"
        if victim == "served":
            killed = first
        else:  # the other one, still in its slow start: killed, not failed
            (starting,) = [pid for pid in spawned_by(supervisor.pid) if str(pid) != first]
            killed = str(starting)
        os.kill(int(killed), signal.SIGKILL)
        answered: set[str] = set()
        deadline = time.monotonic() + 30
        while len(answered) < 2 and time.monotonic() < deadline:
            assert supervisor.poll() is None, "serve gave up on a process that had served"
            try:
                with httpx.Client() as fresh:  # a new connection: the kernel picks a process
                    answered.add(fresh.get(f"http://127.0.0.1:{port}/", timeout=1).text)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert len(answered) == 2, answered  # the survivor and the replacement
        assert killed not in answered
    finally:
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(timeout=60) == 0


def test_api_processes_die_with_serve_even_when_it_is_killed(data_dir: Path) -> None:
    served = Served(data_dir, free_port(), TRANSPARENCY_WORKERS="2")
    served.wait_ready()
    children = api_processes(served)
    assert len(children) == 2, children
    served.proc.kill()  # no chance to stop them itself
    served.finish()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "orphans serve on"
    again = Served(data_dir, free_port())  # takes over the database left running, and stops it
    again.wait_ready()
    assert again.stop()[0] == 0
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_stations_get_a_port_whose_processes_the_public_ones_make_way_for(data_dir: Path) -> None:
    """With TRANSPARENCY_STATION_PORT, stations' claims have API processes of their own, at
    the CPU's normal priority; the public port's run SCHED_IDLE (``below_stations``), so
    nothing the public sends takes a core from a claim (bench_faults.py measures what that
    buys). A public process's own bulk work, a photo's decoder, still keeps to the bulk CPUs
    at nice 10."""
    key, stations = str(new_api_key()), free_port()
    served = Served(
        data_dir, free_port(), TRANSPARENCY_ADMIN_KEY=key, TRANSPARENCY_WORKERS="2",
        TRANSPARENCY_STATION_PORT=str(stations),
    )  # fmt: skip
    served.wait_ready()
    r = httpx.get(f"http://127.0.0.1:{stations}/metrics", headers=bearer(key), timeout=30)
    assert r.status_code == 200, r.text

    port_of: dict[int, int] = {}  # each API process's listening port
    deadline = time.monotonic() + 30
    while len(port_of) < 4:  # each process listens once it has started
        assert time.monotonic() < deadline, port_of
        time.sleep(0.1)
        port_of = {
            pid: c.laddr.port
            for pid in api_processes(served)
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
    policies: dict[int, list[int]] = {}
    for pid, port in port_of.items():
        policies.setdefault(port, []).append(os.sched_getscheduler(pid))
    assert policies == {served.port: [os.SCHED_IDLE] * 2, stations: [os.SCHED_OTHER] * 2}

    with httpx.Client(base_url=served.url, timeout=30) as http:
        r = http.post("/v1/scans", files={"image": ("qr.png", qr_png("hello"), "image/png")})
    assert r.status_code == 200, r.text
    public = [pid for pid, port in port_of.items() if port == served.port]
    decoders = [child.pid for pid in public for child in psutil.Process(pid).children()]
    assert decoders
    for pid in decoders:
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert os.getpriority(os.PRIO_PROCESS, pid) == 10
        assert os.sched_getaffinity(pid) == bulk_cpus(), pid
    code, out, err = served.stop()
    assert code == 0, err
    assert f"Stations' port http://127.0.0.1:{stations}  (2 API processes" in out


def test_the_embedded_server_is_sized_for_the_machine(data_dir: Path) -> None:
    """The embedded PostgreSQL runs with transparency.conf, not PostgreSQL's stock sizes, and
    accepts every connection the API processes' pools may open."""
    wanted = embedded.tuning(embedded.available_memory())
    del wanted["max_connections"]
    served = Served(
        data_dir, free_port(), TRANSPARENCY_WORKERS="3", TRANSPARENCY_POOL_MAX_SIZE="50"
    )
    served.wait_ready()
    differing = [
        f"{name} = {value}"
        for name, value in wanted.items()
        if not pg_value(data_dir, SAME_SETTING, name, value)
    ]
    if int(pg_value(data_dir, "show max_connections")) < 3 * (50 + 1):
        differing.append("max_connections below three pools of 50 and their listeners")
    assert differing == []
    code, _, err = served.stop()
    assert code == 0, err
    assert not (data_dir / "pg" / "postmaster.pid").exists()


@pytest.mark.parametrize(
    ("cpu_max", "quota_cores"), [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1)]
)
def test_cores_are_the_affinity_or_the_containers_quota(
    tmp_path: Path, cpu_max: str, quota_cores: int | None
) -> None:
    limits = tmp_path / "cpu.max"
    limits.write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    expected = affinity if quota_cores is None else min(affinity, quota_cores)
    assert embedded.available_cores(limits) == expected
    assert embedded.available_cores(tmp_path / "absent") == affinity


def test_an_external_database_gets_one_api_process_unless_told() -> None:
    external = Settings(database_url=SecretStr("postgresql://db.example/transparency"))
    assert resolve(external).workers == 1
    assert resolve(external.model_copy(update={"workers": 3})).workers == 3


@pytest.mark.parametrize(
    ("workers", "cores", "each"), [(1, 2, 8), (2, 2, 4), (8, 2, 4), (1, 16, 64), (4, 16, 16)]
)
def test_pools_share_four_connections_per_core(workers: int, cores: int, each: int) -> None:
    assert embedded.pool_size(workers, cores) == each


@pytest.mark.parametrize(
    ("memory", "shared"),
    [(256 << 20, "128MB"), (2 << 30, "512MB"), (24 << 30, "1024MB")],
)
def test_shared_buffers_take_a_quarter_of_memory_within_bounds(memory: int, shared: str) -> None:
    assert embedded.tuning(memory)["shared_buffers"] == shared
    assert embedded.tuning(memory, connections=30)["max_connections"] == "100"
    assert embedded.tuning(memory, connections=250)["max_connections"] == "250"


def test_a_server_made_before_its_tuning_gets_it_at_its_next_start(data_dir: Path) -> None:
    """Data made by an older version (no transparency.conf) is tuned when serve starts it."""
    first = Served(data_dir, free_port())
    first.wait_ready()
    assert first.stop()[0] == 0
    (data_dir / "pg" / embedded.TUNING_FILE).unlink()
    again = Served(data_dir, free_port())
    again.wait_ready()
    wanted = embedded.tuning(embedded.available_memory())["shared_buffers"]
    assert pg_value(data_dir, "show shared_buffers").replace("1GB", "1024MB") == wanted
    assert again.stop()[0] == 0


def test_serve_fails_when_its_api_processes_cannot_start(data_dir: Path) -> None:
    """A wrong master key opens no signing key: each process fails at start-up, and so
    does `serve` (with an exit status a supervisor sees), however many processes it runs."""
    key = str(new_api_key())
    first = Served(data_dir, free_port(), TRANSPARENCY_ADMIN_KEY=key)
    first.wait_ready()
    r = httpx.post(f"{first.url}/v1/brands", json={"name": "Acme"}, headers=bearer(key))
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{first.url}/v1/signing-keys/rotate", headers=bearer(r.json()["api_key"]["key"])
    )
    assert r.status_code == 201, r.text  # a signing key, sealed under the master key
    assert first.stop()[0] == 0

    (data_dir / "master.key").write_text(MasterKey.generate_text() + "\n")
    for workers in ("1", "2"):
        served = Served(
            data_dir, free_port(), TRANSPARENCY_ADMIN_KEY=key, TRANSPARENCY_WORKERS=workers
        )
        code, _, err = served.finish()
        assert code != 0, (workers, err)
        assert not (data_dir / "pg" / "postmaster.pid").exists()
    assert re.search(r"transparency: (an API|the job) process failed to start", err), err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_serve_and_its_postgresql(data_dir: Path, workers: str) -> None:
    """systemd's stop and `docker stop` send SIGTERM: serve exits cleanly, and so does the
    embedded PostgreSQL it started (before, one API process died on the spot, its
    PostgreSQL orphaned and still running)."""
    served = Served(data_dir, free_port(), TRANSPARENCY_WORKERS=workers)
    served.wait_ready()
    postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    assert running(postmaster)
    served.proc.send_signal(signal.SIGTERM)
    code, _, err = served.finish()
    assert code == 0, err
    deadline = time.monotonic() + 30  # pg_ctl stop waits for it: gone already, or nearly
    while time.monotonic() < deadline and running(postmaster):
        time.sleep(0.1)
    assert not running(postmaster), "PostgreSQL outlived serve"
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped has stopped)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
