"""A highly available Transparency on this machine, on loopback ports: ``make cluster``.

    etcd (3 members) <- Patroni (3 nodes, PostgreSQL 15, synchronous replication)
        HAProxy :base+50  writes -> the Patroni leader (its REST API's /primary check)
        HAProxy :base+80  the API -> 2 `transparency serve` (round robin, /readyz check)

Every part is Debian's package (etcd-server, patroni, postgresql-15, haproxy, pgbackrest);
nothing here replicates, elects or copies data files: Patroni, etcd and pgBackRest do.
PostgreSQL runs as the ``postgres`` system user, never root. State (data, configs, logs,
pids, ports, keys, the backup repository) lives in one directory
(``.cluster/`` at the repository root, or $TRANSPARENCY_CLUSTER_DIR), so that ``stop`` works
from another shell.

    python deploy/cluster/cluster.py start | stop | status | leader | env
    python deploy/cluster/cluster.py kill-leader | kill-node NODE | start-node NODE
    python deploy/cluster/cluster.py isolate NODE | rejoin NODE      (cut from etcd, and back)
    python deploy/cluster/cluster.py backup [--type full|diff|incr] | backups
    python deploy/cluster/cluster.py restore --target 'TIME WITH ZONE' | latest

Backups are pgBackRest's (Debian's ``pgbackrest``): every node archives WAL to one
repository in the state directory (``backup/``), stanza ``transparency``, and ``restore``
brings the whole cluster back to a point in time (see ``restore``).

Ports from --base-port (default 7400): etcd clients +1..3, peers +11..13, Patroni REST
+21..23, PostgreSQL +31..33, each node's etcd proxy +41..43, writes +50, the API +80,
the two API instances +81, +82. Only the standard library: no project code imports this.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODES = ("pg1", "pg2", "pg3")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
START_SECONDS = 180.0  # a first start (three initdb/basebackups) takes about 25 s here
STOP_SECONDS = 60.0
STANZA = "transparency"  # pgBackRest's name for the cluster; also Patroni's scope


class ClusterError(Exception):
    """The cluster could not do what was asked; the message says why."""


class AlreadyRunning(ClusterError):
    """``start`` found the cluster running: it is left as it is."""


def state_dir(given: str | None) -> Path:
    return Path(given or os.environ.get("TRANSPARENCY_CLUSTER_DIR") or ROOT / ".cluster").resolve()


def ports(base: int) -> dict[str, Any]:
    return {
        "etcd_client": [base + 1 + i for i in range(3)],
        "etcd_peer": [base + 11 + i for i in range(3)],
        "rest": [base + 21 + i for i in range(3)],
        "pg": [base + 31 + i for i in range(3)],
        "etcd_proxy": [base + 41 + i for i in range(3)],
        "write": base + 50,
        "api": base + 80,
        "serve": [base + 81, base + 82],
    }


# --- state ---------------------------------------------------------------------------------


def load_state(home: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((home / "state.json").read_text())
    except FileNotFoundError:
        return {}
    return state


def save_state(home: Path, state: dict[str, Any]) -> None:
    tmp = home / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(home / "state.json")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def running_pids(state: dict[str, Any]) -> dict[str, int]:
    return {name: pid for name, pid in state.get("pids", {}).items() if alive(pid)}


# --- HTTP and waiting ----------------------------------------------------------------------


def get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """(status, JSON body) of a GET; (0, None) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


def wait_for(what: str, check: Any, deadline: float, pids: dict[str, int] | None = None) -> Any:
    """Poll ``check()`` until it returns something true; fail at the deadline, or at once
    if one of ``pids`` (name: pid) has exited (its log says why)."""
    while True:
        found = check()
        if found:
            return found
        for name, pid in (pids or {}).items():
            if not alive(pid):
                raise ClusterError(f"{name} (pid {pid}) exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}")
        time.sleep(0.25)


def members(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The cluster's members as Patroni's REST API reports them (any node that answers)."""
    for port in state["ports"]["rest"]:
        status, body = get_json(f"http://127.0.0.1:{port}/cluster")
        if status == 200 and isinstance(body, dict):
            found: list[dict[str, Any]] = body.get("members", [])
            return found
    return []


def leader(state: dict[str, Any]) -> str | None:
    leaders = [m["name"] for m in members(state) if m.get("role") == "leader"]
    return leaders[0] if len(leaders) == 1 else None


def healthy(state: dict[str, Any]) -> bool:
    """A running leader, and two replicas streaming from it, one the synchronous standby."""
    found = {m["name"]: m for m in members(state)}
    if set(found) != set(NODES):
        return False
    roles = sorted(m.get("role", "") for m in found.values())
    states = {m.get("state") for m in found.values()}
    return roles == ["leader", "replica", "sync_standby"] and states <= {"running", "streaming"}


# --- processes -----------------------------------------------------------------------------


def spawn(home: Path, name: str, argv: list[str], *, user: str | None = None,
          env: dict[str, str] | None = None) -> int:  # fmt: skip
    """Start a process in a session of its own (it outlives this command), output to a log."""
    log = (home / "logs" / f"{name}.log").open("ab")
    kwargs: dict[str, Any] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        env = {**(env or os.environ), "HOME": entry.pw_dir, "USER": user}
    proc = subprocess.Popen(  # noqa: S603 - our own argv
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, cwd=home, env=env, **kwargs,
    )  # fmt: skip
    log.close()
    return proc.pid


def need(program: str) -> str:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if found is None:
        raise ClusterError(f"{program} is not installed: run `make cluster-deps` (as root)")
    return found


def render(template: str, **values: object) -> str:
    text = (HERE / template).read_text()
    return string.Template(text).substitute({k: str(v) for k, v in values.items()})


def secret() -> str:
    return secrets.token_urlsafe(18)


# --- start ---------------------------------------------------------------------------------


def start(home: Path, base: int) -> dict[str, Any]:
    state = load_state(home)
    if state and running_pids(state):
        raise AlreadyRunning(
            f"the cluster in {home} is running already "
            f"(pids {sorted(running_pids(state).values())})"
        )
    for program in ("etcd", "patroni", "haproxy", "pgbackrest"):
        need(program)
    if not (PG_BIN / "postgres").exists():
        raise ClusterError("PostgreSQL 15 is not installed: run `make cluster-deps` (as root)")
    started = time.monotonic()
    deadline = started + START_SECONDS
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # the postgres user walks through it to its nodes' directories
    (home / "logs").mkdir(exist_ok=True)
    secrets_file = home / "secrets.json"
    if secrets_file.exists():  # a restart keeps its passwords and keys: the data has them
        keys = json.loads(secrets_file.read_text())
        base = keys.get("base_port", base)
    else:
        keys = {
            "base_port": base,
            "superuser": secret(),
            "replication": secret(),
            "rewind": secret(),
            "app": secret(),
            "admin_key": _admin_key(),
        }
        secrets_file.write_text(json.dumps(keys, indent=2))
        secrets_file.chmod(0o600)
    master_key = home / "master.key"
    if not master_key.exists():  # both API instances must decrypt the same signing keys
        master_key.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        master_key.chmod(0o600)
    p = ports(base)
    state = {"home": str(home), "ports": p, "pids": {}, "admin_key": keys["admin_key"],
             "api": f"http://127.0.0.1:{p['api']}"}  # fmt: skip
    _check_ports_free(p)

    etcd = need("etcd")
    cluster = ",".join(f"e{i + 1}=http://127.0.0.1:{p['etcd_peer'][i]}" for i in range(3))
    for i in range(3):
        data = home / f"etcd{i + 1}"
        state["pids"][f"etcd{i + 1}"] = spawn(home, f"etcd{i + 1}", [
            etcd, "--name", f"e{i + 1}", "--data-dir", str(data),
            "--listen-client-urls", f"http://127.0.0.1:{p['etcd_client'][i]}",
            "--advertise-client-urls", f"http://127.0.0.1:{p['etcd_client'][i]}",
            "--listen-peer-urls", f"http://127.0.0.1:{p['etcd_peer'][i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{p['etcd_peer'][i]}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", f"transparency-{base}",
            # Loopback is quick, but the machine is shared: the defaults (100 ms, 1 s).
            "--heartbeat-interval", "100", "--election-timeout", "1000",
        ])  # fmt: skip
    save_state(home, state)
    for i in range(3):
        url = f"http://127.0.0.1:{p['etcd_client'][i]}/health"
        wait_for(f"etcd member e{i + 1}", lambda u=url: get_json(u)[0] == 200, deadline,
                 state["pids"])  # fmt: skip

    # HAProxy before Patroni: each node reaches etcd through its own proxy there.
    _write_haproxy(home, p)
    state["pids"]["haproxy"] = _start_haproxy(home)
    save_state(home, state)

    pg = pwd.getpwnam(PG_USER)
    _write_pgbackrest(home, p)
    for i, name in enumerate(NODES):
        node = home / name
        node.mkdir(exist_ok=True)
        os.chown(node, pg.pw_uid, pg.pw_gid)
        node.chmod(0o700)
        config = node / "patroni.yml"
        config.write_text(render(
            "patroni.yml.in", name=name, rest_port=p["rest"][i], pg_port=p["pg"][i],
            etcd_proxy_port=p["etcd_proxy"][i], data_dir=node / "data", home=node,
            superuser_password=keys["superuser"], replication_password=keys["replication"],
            rewind_password=keys["rewind"],
            archive_command=json.dumps(archive_command(home, name)),
            restore_command=json.dumps(restore_command(home, name)),
        ))  # fmt: skip
        os.chown(config, pg.pw_uid, pg.pw_gid)
        config.chmod(0o600)
        state["pids"][f"patroni-{name}"] = spawn(
            home, f"patroni-{name}", [need("patroni"), str(config)], user=PG_USER
        )
        save_state(home, state)
        if i == 0:  # the first node bootstraps (initdb); the others then copy it
            wait_for("the first Patroni node to lead", lambda: leader(state), deadline,
                     state["pids"])  # fmt: skip
    wait_for("a leader with a synchronous standby and a replica", lambda: healthy(state),
             deadline, state["pids"])  # fmt: skip

    _create_database(state, keys)
    # The stanza (idempotent), then a WAL switch archived: archiving works from the start.
    pgbackrest(home, "stanza-create")
    pgbackrest(home, "check")
    state["dsn"] = f"postgresql://transparency:{keys['app']}@127.0.0.1:{p['write']}/transparency"
    _start_serve(home, state, keys, deadline)
    state["started_in_s"] = round(time.monotonic() - started, 1)
    save_state(home, state)
    return state


def _start_serve(home: Path, state: dict[str, Any], keys: dict[str, Any], deadline: float) -> None:
    """Start the two ``transparency serve`` and wait until the balancer reaches them."""
    p = state["ports"]
    for i, port in enumerate(p["serve"]):
        name = f"serve{i + 1}"
        data = home / name
        data.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": state["dsn"],
            "TRANSPARENCY_DATA_DIR": str(data),
            "TRANSPARENCY_HOST": "127.0.0.1",
            "TRANSPARENCY_PORT": str(port),
            "TRANSPARENCY_WORKERS": "1",
            "TRANSPARENCY_ADMIN_KEY": keys["admin_key"],
            "TRANSPARENCY_MASTER_KEY_FILE": str(home / "master.key"),
            "TRANSPARENCY_PUBLIC_URL": state["api"],
            "TRANSPARENCY_TRUSTED_PROXIES": "127.0.0.1",
            "TRANSPARENCY_LOG_LEVEL": os.environ.get("TRANSPARENCY_LOG_LEVEL", "WARNING"),
        }
        state["pids"][name] = spawn(home, name, [sys.executable, "-m", "transparency", "serve"],
                                    env=env)  # fmt: skip
        save_state(home, state)
    for i, port in enumerate(p["serve"]):
        url = f"http://127.0.0.1:{port}/readyz"
        wait_for(f"serve{i + 1} to be ready", lambda u=url: get_json(u)[0] == 200, deadline,
                 state["pids"])  # fmt: skip
    url = f"{state['api']}/readyz"
    wait_for("the API's load balancer", lambda: get_json(url)[0] == 200, deadline, state["pids"])


def _admin_key() -> str:
    """An admin key in the service's format (``transparency new-key`` prints one)."""
    done = subprocess.run(
        [sys.executable, "-m", "transparency", "new-key"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return done.stdout.strip().split()[-1]


def _check_ports_free(p: dict[str, Any]) -> None:
    every = [*p["etcd_client"], *p["etcd_peer"], *p["rest"], *p["pg"], *p["etcd_proxy"],
             p["write"], p["api"], *p["serve"]]  # fmt: skip
    for port in every:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise ClusterError(f"port {port} is in use: choose another --base-port") from exc


def _write_haproxy(home: Path, p: dict[str, Any]) -> None:
    pg_servers = "\n".join(
        f"    server {name} 127.0.0.1:{p['pg'][i]} check port {p['rest'][i]}"
        for i, name in enumerate(NODES)
    )
    api_servers = "\n".join(
        f"    server serve{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(p["serve"])
    )
    proxies = []
    for i, name in enumerate(NODES):
        etcd_servers = "\n".join(
            f"    server e{j + 1} 127.0.0.1:{p['etcd_client'][j]}" for j in range(3)
        )
        proxies.append(
            f"frontend etcd_{name}\n    mode tcp\n    bind 127.0.0.1:{p['etcd_proxy'][i]}\n"
            f"    default_backend etcd_{name}\n\n"
            f"backend etcd_{name}\n    mode tcp\n    balance roundrobin\n{etcd_servers}\n"
        )
    (home / "haproxy.cfg").write_text(render(
        "haproxy.cfg.in", home=home, write_port=p["write"], api_port=p["api"],
        pg_servers=pg_servers, api_servers=api_servers, etcd_proxies="\n".join(proxies),
    ))  # fmt: skip


def _start_haproxy(home: Path) -> int:
    haproxy = need("haproxy")
    check = subprocess.run(  # noqa: S603
        [haproxy, "-c", "-q", "-f", str(home / "haproxy.cfg")], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if check.returncode != 0:
        raise ClusterError(f"haproxy.cfg: {check.stderr.strip()}")
    return spawn(home, "haproxy", [haproxy, "-db", "-f", str(home / "haproxy.cfg")])


def psql(state: dict[str, Any], sql: str, *, password: str, port: int | None = None,
         database: str = "postgres", user: str = "postgres") -> str:  # fmt: skip
    """Run SQL on the leader (through the write port unless ``port``), as ``user``."""
    done = subprocess.run(  # noqa: S603
        [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-h", "127.0.0.1", "-p", str(port or state["ports"]["write"]), "-U", user,
         "-d", database, "-c", sql],
        capture_output=True, text=True, check=False, timeout=30,
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3"},
    )  # fmt: skip
    if done.returncode != 0:
        raise ClusterError(f"psql: {done.stderr.strip()}")
    return done.stdout.strip()


def _create_database(state: dict[str, Any], keys: dict[str, str]) -> None:
    """The service's role and database, once (the leader replicates them)."""
    deadline = time.monotonic() + 30

    def writable() -> bool:
        try:
            return psql(state, "select not pg_is_in_recovery()", password=keys["superuser"]) == "t"
        except ClusterError:
            return False

    wait_for("HAProxy's write port to reach the leader", writable, deadline)
    password = keys["app"].replace("'", "''")
    psql(state, "do $$ begin if not exists (select from pg_roles where rolname = 'transparency')"
                f" then create role transparency login password '{password}'; end if; end $$",
         password=keys["superuser"])  # fmt: skip
    if psql(state, "select 1 from pg_database where datname = 'transparency'",
            password=keys["superuser"]) != "1":  # fmt: skip
        psql(state, "create database transparency owner transparency",
             password=keys["superuser"])  # fmt: skip


# --- stop ----------------------------------------------------------------------------------


def stop(home: Path) -> list[str]:
    """Stop everything in order (API, HAProxy, Patroni and its PostgreSQL, etcd); return what
    was still running after all (killed), which should be nothing."""
    state = load_state(home)
    if not state:
        return []
    pids: dict[str, int] = state.get("pids", {})
    order = [[n for n in pids if n.startswith(kind)] for kind in ("serve", "haproxy", "patroni",
                                                                 "etcd")]  # fmt: skip
    killed = []
    for group in order:
        # haproxy stops before Patroni only when the API is gone, so no client sees it go.
        for name in group:
            if name in pids and alive(pids[name]):
                os.kill(pids[name], signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for name in group:
            while name in pids and alive(pids[name]) and time.monotonic() < deadline:
                time.sleep(0.1)
            if name in pids and alive(pids[name]):
                os.killpg(pids[name], signal.SIGKILL)
                killed.append(name)
    # A PostgreSQL left behind by a Patroni that was killed: its postmaster.pid names it.
    for name in NODES:
        pid = postmaster_pid(home, name)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
            killed.append(f"postgres of {name}")
    state["pids"] = {}
    save_state(home, state)
    return killed


def postmaster_pid(home: Path, node: str) -> int | None:
    try:
        return int((home / node / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def leftovers(home: Path) -> list[str]:
    """Processes whose command line names the state directory, or that run in it (every
    process ``start`` spawns, and their children, start there): none after ``stop``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        inside = cwd == str(home) or cwd.startswith(f"{home}/")
        if (inside or str(home) in cmdline) and alive(int(entry.name)):
            found.append(f"{entry.name} {cmdline.strip()[:100]}")
    return found


# --- faults --------------------------------------------------------------------------------


def kill_leader(home: Path) -> str:
    """SIGKILL the Patroni leader's PostgreSQL (its postmaster): a crashed primary."""
    state = load_state(home)
    name = leader(state)
    if name is None:
        raise ClusterError("no single leader now")
    pid = postmaster_pid(home, name)
    if pid is None or not alive(pid):
        raise ClusterError(f"the leader {name} has no running PostgreSQL")
    os.kill(pid, signal.SIGKILL)
    return f"killed the postmaster (pid {pid}) of the leader {name} at {time.time():.3f}"


def kill_node(home: Path, node: str) -> str:
    """SIGKILL a node's Patroni and its PostgreSQL: a machine lost, until ``start-node``."""
    state = load_state(home)
    pid = state["pids"].get(f"patroni-{node}")
    postmaster = postmaster_pid(home, node)
    if pid is None or not alive(pid):
        raise ClusterError(f"{node}'s Patroni is not running")
    os.kill(pid, signal.SIGKILL)
    if postmaster is not None and alive(postmaster):
        os.kill(postmaster, signal.SIGKILL)
    return (
        f"killed {node}: Patroni (pid {pid}) and PostgreSQL (pid {postmaster}) at {time.time():.3f}"
    )


def start_node(home: Path, node: str) -> str:
    """Start a node's Patroni again (after ``kill-node``): it rejoins as a replica."""
    state = load_state(home)
    pid = state["pids"].get(f"patroni-{node}")
    if pid is not None and alive(pid):
        raise ClusterError(f"{node}'s Patroni runs already (pid {pid})")
    config = home / node / "patroni.yml"
    state["pids"][f"patroni-{node}"] = spawn(
        home, f"patroni-{node}", [need("patroni"), str(config)], user=PG_USER
    )
    save_state(home, state)
    return f"started {node}'s Patroni (pid {state['pids'][f'patroni-{node}']})"


def haproxy_command(home: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(home / "haproxy.sock"))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode().strip()


def isolate(home: Path, node: str) -> str:
    """Cut ``node``'s Patroni off from etcd, as a partition would: its proxy stops accepting
    (new connections hang, unanswered) and its open connections are closed."""
    if node not in NODES:
        raise ClusterError(f"no node {node!r}: one of {', '.join(NODES)}")
    out = [haproxy_command(home, f"disable frontend etcd_{node}")]
    out += [haproxy_command(home, f"shutdown sessions server etcd_{node}/e{j}") for j in (1, 2, 3)]
    return f"{node} cut off from etcd" + "".join(f"; {o}" for o in out if o)


def rejoin(home: Path, node: str) -> str:
    if node not in NODES:
        raise ClusterError(f"no node {node!r}: one of {', '.join(NODES)}")
    out = haproxy_command(home, f"enable frontend etcd_{node}")
    return f"{node} reaches etcd again" + (f"; {out}" if out else "")


# --- backups -------------------------------------------------------------------------------


def pgbackrest_config(home: Path) -> Path:
    return home / "pgbackrest" / "pgbackrest.conf"


def _write_pgbackrest(home: Path, p: dict[str, Any]) -> None:
    """pgBackRest's configuration, its repository and its own directories, all the postgres
    user's: archive_command runs as that user, and so must every pgBackRest command."""
    pg = pwd.getpwnam(PG_USER)
    for path in (home / "pgbackrest", home / "backup", home / "logs" / "pgbackrest"):
        path.mkdir(exist_ok=True)
        os.chown(path, pg.pw_uid, pg.pw_gid)
        path.chmod(0o750)
    nodes = "\n".join(
        f"pg{i + 1}-path={home / name / 'data'}\npg{i + 1}-port={p['pg'][i]}\n"
        f"pg{i + 1}-socket-path={home / name}"
        for i, name in enumerate(NODES)
    )
    config = pgbackrest_config(home)
    config.write_text(render("pgbackrest.conf.in", home=home, stanza=STANZA, nodes=nodes))
    os.chown(config, pg.pw_uid, pg.pw_gid)
    config.chmod(0o640)


def _pgbackrest_command(home: Path, node: str) -> str:
    # pg1-path: the node's own data directory, whichever pgN it is in the stanza.
    return (
        f"{need('pgbackrest')} --config={pgbackrest_config(home)} --stanza={STANZA}"
        f" --pg1-path={home / node / 'data'}"
    )


def archive_command(home: Path, node: str) -> str:
    return f"{_pgbackrest_command(home, node)} archive-push %p"


def restore_command(home: Path, node: str) -> str:
    return f'{_pgbackrest_command(home, node)} archive-get %f "%p"'


def as_postgres(home: Path, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwnam(PG_USER)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": entry.pw_dir,
           "USER": PG_USER, "LANG": "C.UTF-8"}  # fmt: skip
    return subprocess.run(  # noqa: S603 - our own argv
        argv, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], env=env, cwd=home,
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def pgbackrest(home: Path, command: str, *options: str, timeout: float = 3600) -> str:
    """Run a pgBackRest command on the stanza, as the postgres user; its output."""
    done = as_postgres(home, [need("pgbackrest"), f"--config={pgbackrest_config(home)}",
                              f"--stanza={STANZA}", *options, command], timeout)  # fmt: skip
    if done.returncode != 0:
        raise ClusterError(f"pgbackrest {command}: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


def backup(home: Path, kind: str) -> str:
    """A backup of the leader (``incr`` and ``diff`` become ``full`` when none exists yet)."""
    began = time.monotonic()
    pgbackrest(home, "backup", f"--type={kind}")
    took = time.monotonic() - began
    last = backup_sets(home)[-1]
    return (f"{last['type']} backup {last['label']} in {took:.1f} s: database "
            f"{last['info']['size'] / 2**20:,.0f} MiB, this backup "
            f"{last['info']['delta'] / 2**20:,.0f} MiB, stored "
            f"{last['info']['repository']['delta'] / 2**20:,.0f} MiB")  # fmt: skip


def backup_sets(home: Path) -> list[dict[str, Any]]:
    """The repository's backups, oldest first (``pgbackrest info``'s JSON)."""
    [stanza] = json.loads(pgbackrest(home, "info", "--output=json"))
    found: list[dict[str, Any]] = stanza.get("backup", [])
    return found


def backups(home: Path) -> str:
    return pgbackrest(home, "info")


def parse_target(target: str) -> str:
    """``latest``, or a time with its zone as pgBackRest (and PostgreSQL) read it, in UTC."""
    if target == "latest":
        return target
    try:
        at = datetime.fromisoformat(target)
    except ValueError as exc:
        raise ClusterError(f"--target {target!r}: not a time (2026-12-04 09:30:00+00)") from exc
    if at.tzinfo is None:
        raise ClusterError(f"--target {target!r} has no zone: add one (+00, +01:00, Z)")
    return at.astimezone(UTC).isoformat(sep=" ")


def restore(home: Path, target: str) -> str:
    """Bring the whole cluster back to ``target`` (a time with its zone, or ``latest``: the
    end of the archived WAL), from the repository alone, as an operator would by hand:

    1. archive the current WAL segment, if a primary still answers (what it holds is then
       reachable);
    2. stop both ``serve`` (the API says nothing rather than the future being undone under
       it; their key cache would still honour API keys made after the target), and every
       Patroni (each stops its PostgreSQL);
    3. remove the cluster from etcd (``patronictl remove``): its leader, members and last
       positions describe the history being discarded;
    4. ``pgbackrest restore`` into pg1 (--delta: only the files that differ are written)
       with ``--type=time --target-action=promote``; start that PostgreSQL alone, let it
       replay WAL to the target and promote itself onto a new timeline, and clear the
       recovery settings pgBackRest wrote; stop it;
    5. start pg1's Patroni: it finds a primary's data and no cluster in etcd, and takes
       over as the leader;
    6. empty pg2 and pg3 and start their Patroni: each copies the new leader
       (pg_basebackup) and follows it, one as the synchronous standby;
    7. start both ``serve`` and wait until the API answers through the balancer.
    """
    target = parse_target(target)
    state = load_state(home)
    if not state:
        raise ClusterError(f"no cluster in {home}: `start` it first (its repository is {home})")
    need("pgbackrest")
    steps: list[str] = []
    try:
        return _restore(home, state, target, steps)
    except (ClusterError, OSError, subprocess.SubprocessError) as exc:
        done = "".join(f"\n  {s}" for s in steps)
        raise ClusterError(f"restore to {target} failed after:{done or ' nothing'}\n{exc}") from exc


def _archive_last_wal(home: Path, state: dict[str, Any]) -> str:
    """Archive the leader's current WAL segment (``pgbackrest check`` switches it and waits),
    so that the last commits can be restored. Just after a node is lost, the others take
    Patroni's ttl (10 s) to elect a leader: try for 30 s while any Patroni runs."""
    if not any(name.startswith("patroni-") for name in running_pids(state)):
        return "no node runs: WAL not archived before is not restored"
    deadline = time.monotonic() + 30
    while True:
        try:
            pgbackrest(home, "check", "--archive-timeout=20", timeout=60)
            return "archived the leader's current WAL"
        except (ClusterError, subprocess.SubprocessError) as exc:
            if time.monotonic() > deadline:
                return f"could not archive the leader's current WAL: {exc}"
            time.sleep(2)


def _restore(home: Path, state: dict[str, Any], target: str, steps: list[str]) -> str:
    keys = json.loads((home / "secrets.json").read_text())
    began = time.monotonic()
    steps.append(_archive_last_wal(home, state))
    if not backup_sets(home):
        raise ClusterError("the repository holds no backup: nothing to restore from")

    _stop_group(state, [n for n in state["pids"] if n.startswith("serve")])
    _stop_group(state, [f"patroni-{n}" for n in NODES])
    for node in NODES:  # a PostgreSQL whose Patroni was killed: it must not run on
        pid = postmaster_pid(home, node)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
    save_state(home, state)
    steps.append("stopped both serve and every Patroni")

    removed = subprocess.run(  # noqa: S603
        [need("patronictl"), "-c", str(home / NODES[0] / "patroni.yml"), "remove", STANZA],
        input=f"{STANZA}\nYes I am aware\n{NODES[0]}\n", capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    if removed.returncode != 0:
        raise ClusterError(f"patronictl remove: {(removed.stderr or removed.stdout).strip()}")
    steps.append("removed the cluster from etcd")

    data = home / NODES[0] / "data"
    options = [f"--pg1-path={data}", "--delta", "--log-level-console=info"]
    if target != "latest":
        options += ["--type=time", f"--target={target}", "--target-action=promote"]
    restored_at = time.monotonic()
    said = pgbackrest(home, "restore", *options)
    chosen = [line.split("INFO: ", 1)[-1] for line in said.splitlines() if "backup set" in line]
    _recover_alone(home, state)
    steps.append(f"restored pg1 to {target} in {time.monotonic() - restored_at:.1f} s "
                 f"({'; '.join(chosen)})")  # fmt: skip

    deadline = time.monotonic() + START_SECONDS
    config = home / NODES[0] / "patroni.yml"
    state["pids"][f"patroni-{NODES[0]}"] = spawn(
        home, f"patroni-{NODES[0]}", [need("patroni"), str(config)], user=PG_USER
    )
    save_state(home, state)
    wait_for(f"{NODES[0]} to lead", lambda: leader(state) == NODES[0], deadline, state["pids"])
    for node in NODES[1:]:
        shutil.rmtree(home / node / "data", ignore_errors=True)
        state["pids"][f"patroni-{node}"] = spawn(
            home, f"patroni-{node}", [need("patroni"), str(home / node / "patroni.yml")],
            user=PG_USER,
        )  # fmt: skip
        save_state(home, state)
    wait_for("the replicas to copy the leader", lambda: healthy(state), deadline, state["pids"])
    steps.append("pg2 and pg3 copied from the new leader")
    _start_serve(home, state, keys, deadline)
    save_state(home, state)
    steps.append("both serve ready")
    return (f"cluster restored to {target} in {time.monotonic() - began:.1f} s:\n  "
            + "\n  ".join(steps))  # fmt: skip


def _stop_group(state: dict[str, Any], names: list[str]) -> None:
    pids = {n: state["pids"][n] for n in names if n in state["pids"]}
    for pid in pids.values():
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for pid in pids.values():
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
    for name in pids:
        del state["pids"][name]


def _recover_alone(home: Path, state: dict[str, Any]) -> None:
    """Start pg1's restored PostgreSQL outside Patroni until it has replayed to the target
    and promoted itself, then stop it cleanly for Patroni to take over.

    The restored postgresql.conf is Patroni's on the node that was the leader at backup
    time: its port, socket directory and archive_command may be another node's, so pg1's
    are given on the command line; synchronous_standby_names is cleared (no standby yet)."""
    node, i = NODES[0], 0
    data = home / node / "data"
    log = home / "logs" / f"restore-{node}.log"
    pg = pwd.getpwnam(PG_USER)
    log.touch()
    os.chown(log, pg.pw_uid, pg.pw_gid)
    port = state["ports"]["pg"][i]
    settings = {
        "port": str(port),
        "unix_socket_directories": str(home / node),
        "archive_command": archive_command(home, node),
        "synchronous_standby_names": "",
    }
    options = " ".join(f"-c {k}='{v}'" for k, v in settings.items())
    started = as_postgres(home, [str(PG_BIN / "pg_ctl"), "start", "-w", "-t", "3600",
                                 "-D", str(data), "-l", str(log), "-o", options],
                          timeout=3600)  # fmt: skip
    if started.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise ClusterError(f"the restored PostgreSQL did not start:\n{tail}")

    def local(sql: str) -> str:
        done = as_postgres(home, [str(PG_BIN / "psql"), "-X", "-A", "-t", "-v",
                                  "ON_ERROR_STOP=1", "-h", str(home / node), "-p", str(port),
                                  "-d", "postgres", "-c", sql], 60)  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-6:])
            hint = (
                "\nThe repository's WAL ends before the target: restore to an earlier time, "
                "or to latest. The cluster stays stopped until a restore succeeds."
                if "before configured recovery target" in tail
                else ""
            )
            raise ClusterError(f"the restored {node} stopped (logs/restore-{node}.log):\n"
                               f"{tail}{hint}")  # fmt: skip
        return done.stdout.strip()

    try:
        deadline = time.monotonic() + 3600
        while local("select pg_is_in_recovery()") != "f":
            if time.monotonic() > deadline:
                raise ClusterError("the restored PostgreSQL did not reach its target")
            time.sleep(0.2)
        for name in ("restore_command", "recovery_target_time", "recovery_target_action"):
            # Left in postgresql.auto.conf, they would stop this node's WAL replay at the
            # target again the day it follows another leader as a replica.
            local(f"alter system reset {name}")
    finally:
        as_postgres(home, [str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)],
                    timeout=600)  # fmt: skip


# --- command line --------------------------------------------------------------------------


def status(home: Path) -> str:
    state = load_state(home)
    if not state or not running_pids(state):
        return f"no cluster runs from {home}"
    lines = [f"API {state['api']}  writes 127.0.0.1:{state['ports']['write']}"]
    for m in members(state):
        lag = m.get("lag", "")
        lines.append(f"  {m['name']:4} {m.get('role', '?'):12} {m.get('state', '?'):10} "
                     f"timeline {m.get('timeline', '?')}  lag {lag}")  # fmt: skip
    down = sorted(set(state["pids"]) - set(running_pids(state)))
    if down:
        lines.append(f"  not running: {', '.join(down)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cluster.py", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="state directory (default .cluster/ or "
                        "$TRANSPARENCY_CLUSTER_DIR)")  # fmt: skip
    parser.add_argument("--base-port", type=int, default=7400)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop", "status", "kill-leader", "leader", "env"):
        sub.add_parser(name)
    for name in ("isolate", "rejoin", "kill-node", "start-node"):
        sub.add_parser(name).add_argument("node", choices=NODES)
    sub.add_parser("backup").add_argument("--type", choices=("full", "diff", "incr"),
                                          default="incr")  # fmt: skip
    sub.add_parser("backups")
    sub.add_parser("restore").add_argument(
        "--target", required=True, help="a time with its zone, or 'latest'"
    )
    args = parser.parse_args(argv)
    home = state_dir(args.dir)
    try:
        if args.command == "start":
            try:
                state = start(home, args.base_port)
            except AlreadyRunning as exc:
                print(f"{exc}: nothing to do")
                print(status(home))
                print(f"admin key: {load_state(home)['admin_key']}")
                return 0
            except (ClusterError, OSError, subprocess.SubprocessError):
                stop(home)  # what did start, so that nothing is left half up
                raise
            print(f"cluster started in {state['started_in_s']} s ({home})")
            print(status(home))
            print(f"API:       {state['api']}")
            print(f"admin key: {state['admin_key']}")
        elif args.command == "stop":
            killed = stop(home)
            left = leftovers(home)
            if killed:
                print(f"had to kill: {', '.join(killed)}")
            if left:
                print("still running:\n  " + "\n  ".join(left), file=sys.stderr)
                return 1
            print(f"cluster stopped; nothing of {home} runs")
        elif args.command == "status":
            print(status(home))
        elif args.command == "leader":
            print(leader(load_state(home)) or "")
        elif args.command == "env":
            state = load_state(home)
            print(f"API={state['api']}\nADMIN={state['admin_key']}\nDATABASE_URL={state['dsn']}")
        elif args.command == "kill-leader":
            print(kill_leader(home))
        elif args.command == "isolate":
            print(isolate(home, args.node))
        elif args.command == "rejoin":
            print(rejoin(home, args.node))
        elif args.command == "kill-node":
            print(kill_node(home, args.node))
        elif args.command == "start-node":
            print(start_node(home, args.node))
        elif args.command == "backup":
            print(backup(home, args.type))
        elif args.command == "backups":
            print(backups(home))
        elif args.command == "restore":
            print(restore(home, args.target))
    except (ClusterError, OSError, subprocess.SubprocessError) as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
