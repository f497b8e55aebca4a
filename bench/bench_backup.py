"""Backup benchmark: how long pgBackRest takes to back up and restore the cluster's database
at a given size, beside a plain copy of the same data directory in the same run.

    .venv/bin/python bench/bench_backup.py                  # 10M units
    .venv/bin/python bench/bench_backup.py --units 1M --changed 5000

It starts the local cluster of deploy/cluster (``cluster.py start``: etcd, three PostgreSQL 15
nodes under Patroni with synchronous replication, HAProxy, two ``serve``) in a temporary
directory on free ports, and fills its database with ``--units`` units straight through the
write port, with bench_scale.py's filler (units over 8 brands, a share shipped with their
fulfilment passes in scan_events, a share of those scanned by a customer); then vacuums,
analyzes and checkpoints. Then, each timed:

- a full backup (``cluster.py backup --type full``: a checkpoint, every file of the leader,
  lz4, two processes, and the WAL it needs archived);
- a small change: ``--changed`` random active units shipped, each with its pass;
- an incremental backup after it (pgBackRest 2.45 copies each changed *file* whole: a data
  file is at most 1 GiB, and a few thousand scattered updates touch most of them);
- the loss of the leader's disk (its node killed, its data directory removed), then
  ``cluster.py restore --target TIME`` to the database's clock after the change: the whole
  procedure (stop, pgBackRest restore into the empty directory, WAL replay to the target,
  Patroni back, both replicas copied again from the new leader, both ``serve`` back),
  and the changed units checked to be there;
- the ceiling: ``tar`` of a replica's data directory to a file on the same disk (what
  reading and writing the files costs, with no compression and no checksums).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from bench_scale import fill, make_filler, parse_size

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "deploy" / "cluster" / "cluster.py"
OFFSETS = (1, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43, 50, 80, 81, 82)


def free_base_port() -> int:
    for base in range(32000, 60000, 100):
        try:
            for offset in OFFSETS:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise SystemExit("no free range of ports for the cluster")


class Cluster:
    def __init__(self, home: Path, base: int) -> None:
        self.home, self.base = home, base

    def cli(self, *args: str) -> tuple[float, str]:
        """Seconds ``cluster.py args`` took, and what it printed; exit on failure."""
        began = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, str(CLUSTER), "--dir", str(self.home), "--base-port",
             str(self.base), *args],
            capture_output=True, text=True, check=False, cwd=ROOT,
        )  # fmt: skip
        took = time.perf_counter() - began
        if done.returncode != 0:
            raise SystemExit(f"cluster.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return took, done.stdout.strip()

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.home / "state.json").read_text())
        return state

    @property
    def superuser_dsn(self) -> str:
        password = json.loads((self.home / "secrets.json").read_text())["superuser"]
        return f"postgresql://postgres:{password}@127.0.0.1:{self.state['ports']['write']}/transparency"


async def sql(dsn: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("set statement_timeout = 0")
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


def settle(dsn: str) -> None:
    """Vacuum (hint bits, visibility map) and checkpoint the load before the full backup,
    so that the incremental after it measures the change, not the load's late writes."""
    asyncio.run(sql(dsn, "vacuum (analyze) units, scan_events, code_batches"))
    asyncio.run(sql(dsn, "checkpoint"))


def change(dsn: str, count: int) -> str:
    """Ship ``count`` random active units with a pass each; the database's clock after."""

    async def run() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("set statement_timeout = 0")
            ids = await conn.fetch(
                "select code from units tablesample system (1) where state = 'active'"
            )
            codes = [r["code"] for r in random.sample(ids, min(count, len(ids)))]
            async with conn.transaction():
                await conn.execute(
                    "update units set state = 'shipped', shipped_at = now(), updated_at = now(),"
                    " shipment_id = 'bench-backup' where code = any($1::text[])",
                    codes,
                )
                await conn.execute(
                    "insert into scan_events (code, id, kind, result, brand_id, product_id,"
                    " api_key_id, shipment_id) select code, gen_random_uuid(), 'fulfilment',"
                    " 'pass', brand_id, product_id, 'bench', 'bench-backup' from units"
                    " where code = any($1::text[])",
                    codes,
                )
            return str(await conn.fetchval("select clock_timestamp()"))
        finally:
            await conn.close()

    return asyncio.run(run())


def du(path: Path) -> int:
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)  # noqa: S603, S607
    return int(done.stdout.split()[0])


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def number(text: str, pattern: str) -> float:
    found = re.search(pattern, text.replace(",", ""))
    return float(found.group(1)) if found else float("nan")


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    cluster = Cluster(work / "cluster", free_base_port())
    cluster.home.mkdir()
    cluster.home.chmod(0o755)
    try:
        took, _ = cluster.cli("start")
        print(f"cluster started in {took:.0f} s ({cluster.home})", flush=True)
        dsn = cluster.state["dsn"]
        filler = asyncio.run(_filler(dsn))
        print(f"filling {args.units:,} units", flush=True)
        filled = asyncio.run(fill(dsn, filler, args.units, 0))
        settle(cluster.superuser_dsn)
        [[db_size]] = asyncio.run(sql(dsn, "select pg_database_size('transparency')"))
        [[units]] = asyncio.run(sql(dsn, "select count(*) from units"))
        r: dict[str, Any] = {"units": units, "fill_s": filled, "db_bytes": db_size}

        r["full_s"], said = cluster.cli("backup", "--type", "full")
        print(said, flush=True)
        r["full_stored_mib"] = number(said, r"stored (\d+) MiB")
        at = change(cluster.superuser_dsn, args.changed)
        r["incr_s"], said = cluster.cli("backup", "--type", "incr")
        print(said, flush=True)
        r["incr_mib"] = number(said, r"this backup (\d+) MiB")
        r["repo_bytes"] = du(cluster.home / "backup")

        tar = work / "ceiling.tar"
        began = time.perf_counter()
        subprocess.run(["tar", "-cf", str(tar), "-C", str(cluster.home / "pg2"), "data"],  # noqa: S603, S607
                       check=False, capture_output=True)  # fmt: skip
        r["tar_s"] = time.perf_counter() - began
        r["data_dir_bytes"] = tar.stat().st_size
        tar.unlink()

        # pg1's disk lost (restore writes there): its node killed, its data gone.
        cluster.cli("kill-node", "pg1")
        shutil.rmtree(cluster.home / "pg1" / "data")
        r["restore_s"], said = cluster.cli("restore", "--target", at)
        print(said, flush=True)
        r["restore_pg1_s"] = number(said, r"restored pg1 to .* in ([\d.]+) s")
        [[shipped]] = asyncio.run(
            sql(dsn, "select count(*) from units where shipment_id = 'bench-backup'")
        )
        if shipped != args.changed:
            raise SystemExit(f"restored {shipped} of the {args.changed} changed units")
        return r
    finally:
        cluster.cli("stop")


async def _filler(dsn: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await make_filler(conn)
    finally:
        await conn.close()


def report(r: dict[str, Any], changed: int) -> None:
    data = r["data_dir_bytes"]
    print(f"\nBackups of the cluster's database at {r['units']:,} units "
          f"(database {gib(r['db_bytes'])}, data directory {gib(data)})\n")  # fmt: skip
    rows = [
        ("full backup (lz4, 2 processes)", r["full_s"], data,
         f"{r['full_stored_mib']:,.0f} MiB stored"),
        (f"incremental after {changed:,} changed units", r["incr_s"], None,
         f"{r['incr_mib']:,.0f} MiB copied"),
        ("restore: pg1 from the repository + WAL replay", r["restore_pg1_s"], data, ""),
        ("restore: whole procedure (replicas copied too)", r["restore_s"], None, ""),
        ("ceiling: tar of a data directory, same disk", r["tar_s"], data, "no compression"),
    ]  # fmt: skip
    print(f"{'':48} {'seconds':>8} {'MiB/s':>8}  note")
    for name, took, size, note in rows:
        rate = f"{size / 2**20 / took:8.0f}" if size else f"{'':8}"
        print(f"{name:48} {took:8.1f} {rate}  {note}")
    print(f"\nrepository after both: {gib(r['repo_bytes'])}; fill took {r['fill_s']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=parse_size, default=parse_size("10M"))
    parser.add_argument("--changed", type=int, default=10_000, help="units shipped before the"
                        " incremental backup")  # fmt: skip
    parser.add_argument("--dir", help="where the cluster lives (default: the temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backup-", dir=args.dir) as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # PostgreSQL runs as its own user inside
        report(bench(args, work), args.changed)


if __name__ == "__main__":
    main()
