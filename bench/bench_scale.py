"""Scale benchmark: how claims cost as units grow, each size beside the others, same run.

    .venv/bin/python bench/bench_scale.py                        # 1M, 10M, 50M units
    .venv/bin/python bench/bench_scale.py --sizes 1M,5M --seconds 5

It starts the real service (`transparency serve`, embedded PostgreSQL in a temporary
directory, as bench_verification.py does) and grows one database through the sizes in turn.
At each step, fresh codes for the step's runs are first issued through the API
(`loadtest prepare`'s function), then filler units are written until the units table holds
the step's size, so the codes claimed are older than most of the data, as in a warehouse
shipping last month's production. Then, at each size, the same load:

- single claims: the maximum rate (wrk, each fresh code once) and the p99 at a fixed rate,
  70% of the first size's maximum (open loop, latency from the scheduled time);
- totes of --tote codes (the batch endpoint): the maximum rate in units/s, and the p99 at
  70% of the first size's maximum;
- the database's size on disk (pg_database_size; units and scan_events with their
  indexes), the cache hit ratio over the runs, the checkpoints they met, and EXPLAIN
  (ANALYZE, BUFFERS) of one single claim (rolled back).

Filler is written straight into PostgreSQL (a benchmark may): codes in the Transparency
format, made by the issuance job's own generator (each one parses, the check symbol is
right; the tag is made with a secret of the bench's, so they would not verify, and are
never scanned), unique, sorted within each COPY (a btree takes keys in order faster), 100k
units a batch over 8 brands of 4 products each, issued over the past year. A share of them
is shipped (older batches more than newer), each shipped unit with its fulfilment pass in
scan_events (the table every claim appends to and whose indexes grow with it), and a share
of those scanned by customers. Each fill is a few large transactions; after it, the tables
are vacuumed and analyzed and a checkpoint taken (bench_verification's ``settle``).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from bench_verification import (
    BATCH,
    Req,
    Runs,
    Target,
    batch_body,
    claim,
    ensure_wrk,
    settle,
)
from service import Service

from loadtest.prepare import prepare
from transparency.domain import issuance

BATCH_UNITS = 100_000  # units per filler batch, one COPY each
TRANSACTION_BATCHES = 10  # batches per transaction: a million rows
BRANDS, PRODUCTS = 8, 4
SITES = 6
LIMIT_BYTES = 40 << 30  # stop before the database would pass 40 GB
SHARE_SHIPPED_OLD, SHARE_SHIPPED_NEW = 0.7, 0.1  # oldest batch to newest
SHARE_SCANNED = 0.05  # of shipped units, scanned once by a customer
UNIT_COLUMNS = (
    "code", "brand_id", "product_id", "batch_id", "lot", "state", "issued_at", "updated_at",
    "shipped_at", "shipped_site_id", "shipment_id", "customer_scans",
)  # fmt: skip


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


@dataclass(frozen=True)
class Filler:
    """The brands, products and sites filler units belong to."""

    products: list[tuple[uuid.UUID, uuid.UUID, int]]  # (brand, product, key id)
    sites: list[uuid.UUID]


def filler_rows(
    key_id: int,
    brand: str,
    product: str,
    batch: str,
    count: int,
    issued: str,
    shipped_share: float,
    sites: list[str],
    seed: int,
) -> bytes:
    """One filler batch's units as COPY text rows in UNIT_COLUMNS order, sorted by code.

    Run in a worker process, overlapped with the COPY of the batch before."""
    rng = random.Random(seed)  # noqa: S311 (which units are shipped, not a secret)
    found = issuance.generate("transparency", key_id, os.urandom(32), "", count)
    found.sort()
    day = datetime.fromisoformat(issued)
    head = f"\t{brand}\t{product}\t{batch}\tL{batch[:6]}\t"
    active = f"{head}active\t{issued}\t{issued}\t\\N\t\\N\t\\N\t0\n"
    lines = []
    for n, code in enumerate(found):
        if rng.random() < shipped_share:
            at = (day + timedelta(days=1 + rng.random() * 20)).isoformat()
            scans = 1 if rng.random() < SHARE_SCANNED else 0
            # Shipments of about 25 units, as a warehouse's parcels and pallets average.
            lines.append(
                f"{code}{head}shipped\t{issued}\t{at}\t{at}\t{rng.choice(sites)}\t"
                f"fill-{batch[:8]}-{n // 25}\t{scans}\n"
            )
        else:
            lines.append(code + active)
    return "".join(lines).encode()


async def _stream(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def make_filler(conn: asyncpg.Connection) -> Filler:
    products = []
    for b in range(BRANDS):
        brand = uuid.uuid4()
        await conn.execute(
            "insert into brands (id, name) values ($1, $2)", brand, f"filler-{b}-{brand.hex[:6]}"
        )
        for _ in range(PRODUCTS):
            product = uuid.uuid4()
            gtin = f"{secrets.randbelow(10**13):013d}9"  # unique enough, never looked up
            await conn.execute(
                "insert into products (id, brand_id, gtin, name) values ($1, $2, $3, $4)",
                product, brand, gtin, f"filler {gtin}",
            )  # fmt: skip
            # Key ids of a young deployment: small, one per brand, at the top of each code.
            products.append((brand, product, 100 + b))
    sites = []
    for s in range(SITES):
        site = uuid.uuid4()
        await conn.execute(
            "insert into sites (id, name) values ($1, $2)", site, f"filler-{s}-{site.hex[:6]}"
        )
        sites.append(site)
    return Filler(products, sites)


async def write_group(
    conn: asyncpg.Connection, group: list[tuple[uuid.UUID, tuple[Any, ...]]], made: list[bytes]
) -> None:
    """One transaction: a group of filler batches, their units and their scan events."""
    async with conn.transaction():
        for (batch, args), rows in zip(group, made, strict=True):
            await conn.execute(
                "insert into code_batches (id, brand_id, product_id, kind, format,"
                " requested, status, progress, created_at, started_at, finished_at)"
                " values ($1, $2, $3, 'issue', 'transparency', $4, 'done', $4,"
                " $5::timestamptz, $5::timestamptz, $5::timestamptz)",
                batch, uuid.UUID(args[1]), uuid.UUID(args[2]), args[4],
                datetime.fromisoformat(args[5]),
            )  # fmt: skip
            await conn.copy_to_table(
                "units", source=_stream(rows), columns=UNIT_COLUMNS, format="text"
            )
        ids = [batch for batch, _ in group]
        # Each shipped unit's pass, as the claim that shipped it wrote it; a
        # customer's scan of those the customer counter says were scanned.
        await conn.execute(
            "insert into scan_events (code, id, scanned_at, kind, result, brand_id,"
            " product_id, site_id, api_key_id, shipment_id)"
            " select code, gen_random_uuid(), shipped_at, 'fulfilment', 'pass',"
            " brand_id, product_id, shipped_site_id, 'fill-station', shipment_id"
            " from units where batch_id = any($1::uuid[]) and state = 'shipped'"
            " order by code",
            ids,
        )
        await conn.execute(
            "insert into scan_events (code, id, scanned_at, kind, result, brand_id,"
            " product_id, region)"
            " select code, gen_random_uuid(), shipped_at + interval '9 days',"
            " 'customer', 'scanned', brand_id, product_id, 'US'"
            " from units where batch_id = any($1::uuid[]) and customer_scans > 0"
            " order by code",
            ids,
        )


async def reconnect(dsn: str, seconds: float = 120) -> asyncpg.Connection:
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn = await asyncpg.connect(dsn)
            await conn.execute("set statement_timeout = 0")
            return conn
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def fill(dsn: str, filler: Filler, count: int, started_batches: int) -> float:
    """Write ``count`` filler units (whole batches); the seconds it took."""
    began = time.perf_counter()
    batches = -(-count // BATCH_UNITS)
    now = datetime.now(UTC)
    sites = [str(s) for s in filler.sites]
    conn = await reconnect(dsn, 0)
    plan: list[tuple[uuid.UUID, tuple[Any, ...]]] = []
    for n in range(batches):
        index = started_batches + n
        brand, product, key_id = filler.products[index % len(filler.products)]
        # Batches spread over the past year, oldest first; older ones mostly shipped.
        age = 1 - n / max(1, batches - 1)
        issued = (now - timedelta(days=5 + 360 * age)).isoformat()
        share = SHARE_SHIPPED_NEW + (SHARE_SHIPPED_OLD - SHARE_SHIPPED_NEW) * age
        size = min(BATCH_UNITS, count - n * BATCH_UNITS)
        batch = uuid.uuid4()
        args = (key_id, str(brand), str(product), str(batch), size, issued, share, sites, index)
        plan.append((batch, args))
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
            loop = asyncio.get_running_loop()
            groups = [
                plan[first : first + TRANSACTION_BATCHES]
                for first in range(0, len(plan), TRANSACTION_BATCHES)
            ]

            def submit(n: int) -> list[asyncio.Future[bytes]]:
                chosen = groups[n] if n < len(groups) else []
                return [loop.run_in_executor(pool, filler_rows, *args) for _, args in chosen]

            ahead = submit(0)
            for number, group in enumerate(groups):
                # The rows are made before the transaction opens (it never waits idle for
                # them), the next group's while this one is written.
                made = [await future for future in ahead]
                ahead = submit(number + 1)
                for attempt in range(3):
                    try:
                        await write_group(conn, group, made)
                        break
                    except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
                        # The group's transaction rolled back whole: write it again.
                        print(f"  ! connection lost ({exc}); reconnecting", flush=True)
                        if attempt == 2:
                            raise
                        await conn.close(timeout=1)
                        conn = await reconnect(dsn)
                done = min(count, sum(len(g) for g in groups[: number + 1]) * BATCH_UNITS)
                rate = done / (time.perf_counter() - began)
                print(f"  filled {done:,} of {count:,} ({rate:,.0f} units/s)", flush=True)
    finally:
        await conn.close()
    return time.perf_counter() - began


async def query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


SIZES = """
select pg_database_size(current_database()),
       (select sum(pg_total_relation_size(inhrelid)) from pg_inherits
        where inhparent = 'units'::regclass),
       (select sum(pg_indexes_size(inhrelid)) from pg_inherits
        where inhparent = 'units'::regclass),
       (select sum(pg_total_relation_size(inhrelid)) from pg_inherits
        where inhparent = 'scan_events'::regclass),
       (select count(*) from units),
       (select count(*) from scan_events)
"""
COUNTERS = """
select blks_hit, blks_read, (select checkpoints_timed + checkpoints_req from pg_stat_bgwriter)
from pg_stat_database where datname = current_database()
"""


async def time_claims(dsn: str, found: list[str], gtin: str) -> tuple[float, float, float]:
    """The claim statement alone, one at a time on one connection (no HTTP, no pool): its
    median and p99 in ms, and the blocks it read from outside shared_buffers per claim.
    Less sensitive than the rates to what else the machine runs: one core, no queueing."""
    from transparency.db.scans import _CLAIM_ONE

    conn = await asyncpg.connect(dsn)
    try:
        site = await conn.fetchval("select id from sites limit 1")
        read = "select blks_read from pg_stat_database where datname = current_database()"
        before = await conn.fetchval(read)
        took = []
        for code in found:
            began = time.perf_counter()
            await conn.fetchrow(_CLAIM_ONE, code, gtin, site, "timed", "timed")
            took.append(1000 * (time.perf_counter() - began))
        await asyncio.sleep(0.6)  # the statistics collector's flush interval is 500 ms
        after = await conn.fetchval(read)
    finally:
        await conn.close()
    took.sort()
    return took[len(took) // 2], took[int(0.99 * len(took))], (after - before) / len(found)


async def explain_claim(dsn: str, code: str, gtin: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of one single claim of a fresh code, rolled back."""
    from transparency.db.scans import _CLAIM_ONE

    conn = await asyncpg.connect(dsn)
    try:
        site = await conn.fetchval("select id from sites limit 1")
        tx = conn.transaction()
        await tx.start()
        try:
            rows = await conn.fetch(
                f"explain (analyze, buffers, costs off) {_CLAIM_ONE}",
                code, gtin, site, "explain", "explain",
            )  # fmt: skip
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


def gib(value: float) -> str:
    return f"{value / 2**30:.2f} GB"


def step(
    args: argparse.Namespace,
    runs: Runs,
    service: Service,
    target: int,
    filler: Filler,
    state: dict[str, Any],
) -> dict[str, Any]:
    dsn = service.dsn
    reserve = args.single_codes + args.latency_codes + args.tote_codes + args.timed_codes + 1
    data = prepare(service.url, service.admin, reserve, shipped=10, forged=10, photos=0, wait=1800)
    present = asyncio.run(query(dsn, "select count(*) from units"))[0][0]
    missing = max(0, target - present)
    per_unit = state.get("bytes_per_unit")
    if per_unit and per_unit * target > LIMIT_BYTES:
        raise SystemExit(f"stopping: {target:,} units would take about "
                         f"{gib(per_unit * target)}, past the 40 GB limit")  # fmt: skip
    print(f"\n== {target:,} units: filling {missing:,}", flush=True)
    seconds = asyncio.run(fill(dsn, filler, missing, state.get("batches", 0)))
    state["batches"] = state.get("batches", 0) + -(-missing // BATCH_UNITS)
    began = time.perf_counter()
    settle(dsn)
    settled = time.perf_counter() - began
    print(f"  fill {seconds:,.0f} s ({missing / max(seconds, 1e-9):,.0f} units/s), "
          f"vacuum analyze + checkpoint {settled:,.0f} s", flush=True)  # fmt: skip

    api = Target(service.port, data.station_key)
    gtin, fresh = data.gtin, list(data.codes)
    before = asyncio.run(query(dsn, COUNTERS))[0]
    load1 = os.getloadavg()[0]
    tag = f"{target}"
    single = runs.max_rate(
        api,
        [claim(c, gtin, f"s{tag}-{i}") for i, c in enumerate(fresh[: args.single_codes])],
        '"result":"pass"',
        once=True,
    )
    cursor = args.single_codes
    rate = state.setdefault("single_rate", 0.7 * single["rate"])
    count = min(args.latency_codes, int(rate * args.seconds))
    pending = fresh[cursor : cursor + count]
    cursor += args.latency_codes
    latency = runs.at_rate(
        api,
        [claim(c, gtin, f"l{tag}-{i}") for i, c in enumerate(pending)],
        '"result":"pass"',
        rate,
        len(pending) / rate,
    )
    timed = fresh[-1 - args.timed_codes : -1]
    totes = fresh[cursor : -1 - args.timed_codes]  # the last is EXPLAIN's
    half = len(totes) // 2
    tote_reqs = [
        Req("POST", BATCH, batch_body(totes[n : n + args.tote], gtin, f"t{tag}-{n}"))
        for n in range(0, half - args.tote + 1, args.tote)
    ]
    tote = runs.max_rate(api, tote_reqs, '"result":"pass"', once=True)
    tote_rate = state.setdefault("tote_rate", 0.7 * tote["rate"])
    rest = totes[half:]
    fixed = [
        Req("POST", BATCH, batch_body(rest[n : n + args.tote], gtin, f"u{tag}-{n}"))
        for n in range(0, len(rest) - args.tote + 1, args.tote)
    ][: int(tote_rate * args.seconds)]
    tote_latency = runs.at_rate(api, fixed, '"result":"pass"', tote_rate, len(fixed) / tote_rate)
    for name, run, option in (("single", single, "--single-codes"), ("tote", tote, "--tote-codes")):
        if run["exhausted"]:
            print(f"  ! the {name} max-rate run used all its codes: its rate is not valid; "
                  f"raise {option}", flush=True)  # fmt: skip
    load2 = os.getloadavg()[0]
    after = asyncio.run(query(dsn, COUNTERS))[0]
    hit, read = after[0] - before[0], after[1] - before[1]
    median, p99, reads = asyncio.run(time_claims(dsn, timed, gtin))
    explain = asyncio.run(explain_claim(dsn, fresh[-1], gtin))
    sizes = asyncio.run(query(dsn, SIZES))[0]
    result = {
        "units": sizes[4], "events": sizes[5], "fill_s": seconds, "settle_s": settled,
        "single_rate": single["rate"], "single_exhausted": bool(single["exhausted"]),
        "single_p99": latency["p99"], "single_fixed_rate": rate,
        "tote_units_rate": args.tote * tote["rate"], "tote_p99": tote_latency["p99"],
        "tote_fixed_rate": tote_rate, "tote_exhausted": bool(tote["exhausted"]),
        "db_bytes": sizes[0], "units_bytes": sizes[1], "units_index_bytes": sizes[2],
        "events_bytes": sizes[3], "hit_ratio": hit / max(1, hit + read),
        "checkpoints": after[2] - before[2], "load": max(load1, load2),
        "statement_p50": median, "statement_p99": p99, "reads_per_claim": reads,
    }  # fmt: skip
    state["bytes_per_unit"] = sizes[0] / max(1, sizes[4])
    print(json.dumps(result, default=str), flush=True)
    print("  EXPLAIN (ANALYZE, BUFFERS) of one single claim:\n    "
          + explain.replace("\n", "\n    "), flush=True)  # fmt: skip
    return result


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{'units':>12} {'events':>12} {'fill':>7} {'single/s':>9} {'p99 ms':>7} "
          f"{'tote u/s':>9} {'p99 ms':>7} {'database':>10} {'units+idx':>10} {'idx':>9} "
          f"{'events':>9} {'hit':>6} {'ckpt':>4} {'load':>5} "
          f"{'stmt p50/p99 ms':>16} {'reads':>5}")  # fmt: skip
    for r in results:
        print(
            f"{r['units']:>12,} {r['events']:>12,} {r['fill_s']:>6.0f}s {r['single_rate']:>9,.0f} "
            f"{r['single_p99']:>7.1f} {r['tote_units_rate']:>9,.0f} {r['tote_p99']:>7.1f} "
            f"{gib(r['db_bytes']):>10} {gib(r['units_bytes']):>10} "
            f"{gib(r['units_index_bytes']):>9} {gib(r['events_bytes']):>9} "
            f"{r['hit_ratio']:>6.4f} {r['checkpoints']:>4} {r['load']:>5.1f} "
            f"{r['statement_p50']:>7.2f}/{r['statement_p99']:<8.2f} {r['reads_per_claim']:>5.1f}"
        )
    first, last = results[0], results[-1]
    print(f"\nsame load at every size: single claims p99 at {first['single_fixed_rate']:,.0f}/s, "
          f"totes of {args.tote} p99 at {first['tote_fixed_rate']:,.1f} totes/s "
          f"(70% of the first size's maximum); {args.seconds:.0f} s per run")  # fmt: skip
    for name, key in (("single claims", "single_rate"), ("totes (units/s)", "tote_units_rate")):
        ratio = last[key] / first[key]
        verdict = "PASS" if ratio >= 0.8 else "FAIL"
        print(f"{name}: rate at {last['units']:,} / rate at {first['units']:,} = {ratio:.2f}"
              f"  goal >= 0.80  {verdict}")  # fmt: skip
    ratio = last["statement_p50"] / first["statement_p50"]
    print(f"claim statement alone (one connection, no HTTP): median {first['statement_p50']:.2f}"
          f" ms at {first['units']:,}, {last['statement_p50']:.2f} ms at {last['units']:,}"
          f" ({ratio:.2f}x); reads outside shared_buffers per claim "
          f"{first['reads_per_claim']:.1f} -> {last['reads_per_claim']:.1f}")  # fmt: skip
    cores = os.cpu_count() or 1
    busy = [r for r in results if r["load"] > cores]
    if busy:
        peak = max(r["load"] for r in busy)
        print(f"note: the machine was shared: load average up to {peak:.1f} on {cores} cores "
              "during the runs; figures of different sizes compare less well")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M,10M,50M", help="units at each step, growing")
    parser.add_argument("--seconds", type=float, default=10, help="per run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--tote", type=int, default=100, help="codes per tote (batch claim)")
    parser.add_argument("--single-codes", type=int, default=120_000, help="for the max-rate run")
    parser.add_argument("--latency-codes", type=int, default=30_000, help="fixed-rate run")
    parser.add_argument("--tote-codes", type=int, default=800_000, help="for both tote runs")
    parser.add_argument("--timed-codes", type=int, default=2000, help="statement timing")
    parser.add_argument("--dir", help="where the database lives (default: the temp dir)")
    args = parser.parse_args()
    # Stopped with a signal, the service and its PostgreSQL are stopped and the data removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if sizes != sorted(sizes):
        raise SystemExit("--sizes must grow: each step adds to the same database")
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.dir) as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # PostgreSQL runs as its own user inside
        runs = Runs(work, ensure_wrk(), args.connections, args.seconds)
        service = Service(
            work / "data",
            log=work / "service.log",
            TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1000000000",
            TRANSPARENCY_CUSTOMER_BURST="1000000000",
            TRANSPARENCY_CUSTOMER_CHECKS_PER_SECOND="0",
        )
        try:
            filler = asyncio.run(_with(service.dsn))
            state: dict[str, Any] = {}
            results = []
            for target in sizes:
                try:
                    results.append(step(args, runs, service, target, filler, state))
                except SystemExit as stop:
                    print(stop, flush=True)
                    break
            if results:
                report(results, args)
        except BaseException:
            for name in ("service.log", "data/pg/log"):
                path = work / name
                if path.exists():
                    tail = path.read_text(errors="replace").splitlines()[-30:]
                    print(f"--- last lines of {name}:", *tail, sep="\n", flush=True)
            raise
        finally:
            service.stop()


async def _with(dsn: str) -> Filler:
    conn = await asyncpg.connect(dsn)
    try:
        return await make_filler(conn)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
