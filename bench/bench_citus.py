"""Citus benchmark: the bare claim and customer check on plain PostgreSQL and on a Citus
coordinator of the same server, same run; the bytes a unit and a scan event take.

    .venv/bin/python bench/bench_citus.py --url postgresql://postgres@127.0.0.1:9700/postgres
    .venv/bin/python bench/bench_citus.py --url ... --units 200000 --seconds 5

``--url`` names a server's maintenance database: a Citus coordinator with its workers
registered (deploy/citus.md). Two databases are made on it: one plain (no citus
extension: PostgreSQL as the service runs on it today) and one distributed (every node, as
the tests' TEST_CITUS_URL makes them). Each is migrated and filled with --units units
straight in SQL (one brand, one product, one finished batch; a benchmark may), then:

- single claims, one after another (the latency of one station's request), each a fresh
  code, through the service's own statement (db.scans.claim_one) and pool;
- the same with --connections at once: claims per second, the figure the capacity model
  of deploy/citus.md starts from;
- customer checks, one after another (db.scans.customer_scan);
- the bytes on disk a unit and a scan event take (tables and indexes, after VACUUM; the
  fill gives every unit a fulfilment pass, so both tables hold --units rows and more).

Numbers from a shared two-core machine are a floor, not a ceiling: read them beside each
other, not alone.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from uuid import UUID

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import citus
from tests.support.database import with_database
from transparency.db import scans
from transparency.db.migrate import migrate
from transparency.db.pool import open_pool

BRAND, PRODUCT, BATCH, SITE = (UUID(int=i) for i in range(1, 5))
GTIN = "09506000134352"


async def fill(url: str, units: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await conn.execute("insert into brands (id, name) values ($1, 'bench')", BRAND)
        await conn.execute(
            "insert into products (id, brand_id, gtin, name) values ($1, $2, $3, 'bench')",
            PRODUCT,
            BRAND,
            GTIN,
        )
        await conn.execute(
            "insert into code_batches (id, brand_id, product_id, kind, format, requested,"
            " status) values ($1, $2, $3, 'issue', 'transparency', $4, 'done')",
            BATCH,
            BRAND,
            PRODUCT,
            units,
        )
        await conn.execute(
            "insert into units (code, brand_id, product_id, batch_id, state)"
            " select 'TP' || md5(g::text), $1, $2, $3, 'active'"
            " from generate_series(1, $4) as g",
            BRAND,
            PRODUCT,
            BATCH,
            units,
        )
        # a fulfilment pass for every unit: scan_events' size per row, on more than a few
        # pages per shard
        await conn.execute(
            "insert into scan_events (code, kind, result, brand_id, product_id, site_id,"
            " api_key_id, shipment_id)"
            " select code, 'fulfilment', 'pass', brand_id, product_id, $1, 'bench', 'filler'"
            " from units",
            SITE,
        )
        await conn.execute("vacuum analyze")
    finally:
        await conn.close()


def code(n: int) -> str:
    return "TP" + hashlib.md5(str(n).encode()).hexdigest()  # noqa: S324 - names, not secrets


async def measure(url: str, units: int, seconds: float, connections: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with open_pool(url, min_size=connections, max_size=connections) as pool:
        codes = iter(range(1, units + 1))

        async def claim() -> float:
            start = time.perf_counter()
            answer = await scans.claim_one(
                pool, code(next(codes)), GTIN, site_id=SITE, api_key_id="bench",
                shipment_id="bench",
            )  # fmt: skip
            assert answer.reason is None, answer
            return time.perf_counter() - start

        for _ in range(50):  # warm the connections' plans
            await claim()
        latencies = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            latencies.append(await claim())
        figures["claim p50 ms"] = statistics.median(latencies) * 1000
        figures["claim p99 ms"] = statistics.quantiles(latencies, n=100)[98] * 1000

        done = 0

        async def worker(until: float) -> None:
            nonlocal done
            while time.perf_counter() < until:
                await claim()
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds) for _ in range(connections)))
        figures[f"claims/s ({connections} connections)"] = done / (time.perf_counter() - start)

        checks = []
        end = time.perf_counter() + seconds
        n = 1
        while time.perf_counter() < end:
            start = time.perf_counter()
            found = await scans.customer_scan(pool, code(n), "FR")
            checks.append(time.perf_counter() - start)
            assert found is not None
            n += 1
        figures["customer check p50 ms"] = statistics.median(checks) * 1000

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("vacuum analyze")
        distributed = await conn.fetchval(
            "select exists (select from pg_extension where extname = 'citus')"
        )
        size = "citus_total_relation_size" if distributed else "pg_total_relation_size"
        for table in ("units", "scan_events"):
            total = await conn.fetchval(
                f"select sum({size}(inhrelid)) from pg_inherits where inhparent = $1::regclass",
                table,
            )
            rows = await conn.fetchval(f"select count(*) from {table}")
            figures[f"bytes per {table} row"] = total / rows
    finally:
        await conn.close()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a Citus coordinator's maintenance db")
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    async with AsyncExitStack() as stack:
        admin = await asyncpg.connect(args.url)
        plain_name = f"bench_plain_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'create database "{plain_name}"')

        async def drop() -> None:
            await admin.execute(f'drop database "{plain_name}" with (force)')
            await admin.close()

        stack.push_async_callback(drop)
        dbs = {
            "plain PostgreSQL": with_database(args.url, plain_name),
            "Citus (coordinator + workers)": await stack.enter_async_context(
                citus.database(args.url, f"bench_citus_{uuid.uuid4().hex[:8]}")
            ),
        }
        for url in dbs.values():
            await fill(url, args.units)
        for name, url in dbs.items():
            results[name] = await measure(url, args.units, args.seconds, args.connections)
    names = list(results)
    print(f"{'':32}" + "".join(f"{n:>32}" for n in names))
    for figure in results[names[0]]:
        print(f"{figure:32}" + "".join(f"{results[n][figure]:>32.2f}" for n in names))


if __name__ == "__main__":
    asyncio.run(main())
