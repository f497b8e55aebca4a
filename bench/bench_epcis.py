"""EPCIS benchmark: capture rate of a large document, and one EPC's history at scale.

    .venv/bin/python bench/bench_epcis.py                              # 100k events, 10M stored
    .venv/bin/python bench/bench_epcis.py --events 20000 --stored 1M --queries 200

It starts the real service (`transparency serve`, embedded PostgreSQL in a temporary
directory) and, each beside a ceiling measured in the same run:

- capture: one document of --events ObjectEvents posted to ``POST /v1/epcis/capture``,
  timed from the POST to the job's end (read at its URL): commissioning events (each
  registers its unit, as an import does) and receiving events (stored only). Ceiling: a
  raw binary COPY of the same rows (events and their EPCs) into empty copies of the tables,
  from tuples made beforehand: no JSON, no hash, no checks.
- query: --stored events written straight into PostgreSQL for the brand (one EPC each, an
  EPC in about four events, indexes built after the load, then vacuum/analyze), then
  ``GET /v1/epcis/epcs/{epc}/events`` for --queries random EPCs one after another: p50/p95
  as the client sees them. Ceilings: the bare SQL of one EPC's captured events (the child
  table's index range joined to the events), and the same look-up through a GIN index on
  an array of EPCs per event (the other design) over the same rows. And --pages pages of
  100 of the brand's whole history (``GET /v1/epcis/events``, followed by nextPageToken).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from service import Service, setup_brand

from transparency.domain import epcis
from transparency.domain.epcis_events import check_event

EVENT_COLUMNS = (
    "brand_id", "id", "event_id", "event_hash", "type", "action", "event_time", "biz_step",
    "disposition", "read_point", "biz_location", "capture_id", "body",
)  # fmt: skip
CHUNK = 250_000
INDEXES = (
    "create unique index epcis_events_hash_idx on epcis_events (brand_id, event_hash)",
    "create index epcis_events_record_idx on epcis_events (brand_id, record_time, id)",
    "create index epcis_events_time_idx on epcis_events (brand_id, event_time)",
    "alter table epcis_events add primary key (brand_id, id)",
    "alter table epcis_event_epcs add primary key (brand_id, epc, event)",
)
_DROP = (
    "alter table epcis_events drop constraint epcis_events_pkey",
    "alter table epcis_event_epcs drop constraint epcis_event_epcs_pkey",
    "drop index epcis_events_hash_idx",
    "drop index epcis_events_record_idx",
    "drop index epcis_events_time_idx",
)


def size(text: str) -> int:
    text = text.strip().upper()
    for suffix, factor in (("M", 1_000_000), ("K", 1_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def row(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name:<58} {value:>12,.1f} {unit:<8} {note}", flush=True)


def make_document(gtin: str, count: int, commissioning: bool, tag: str) -> bytes:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for i in range(count):
        event: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventTime": (start + timedelta(seconds=i)).isoformat(timespec="milliseconds"),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [epcis.sgtin_urn(gtin, f"{tag}{i}", 12)],
            "action": "ADD" if commissioning else "OBSERVE",
            "bizStep": "commissioning" if commissioning else "receiving",
            "disposition": "active" if commissioning else "in_progress",
            "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        }
        if commissioning:
            event["ilmd"] = {"cbvmda:lotNumber": "L1"}
        events.append(event)
    document = {
        "@context": [epcis.EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": start.isoformat(),
        "epcisBody": {"eventList": events},
    }
    return json.dumps(document).encode()


def capture(http: httpx.Client, key: str, body: bytes) -> tuple[float, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/ld+json"}
    started = time.perf_counter()
    r = http.post("/v1/epcis/capture", content=body, headers=headers, timeout=600)
    if r.status_code != 202:
        raise SystemExit(f"capture answered {r.status_code}: {r.text[:300]}")
    while True:
        job: dict[str, Any] = http.get(r.headers["location"], headers=headers).json()
        if not job["running"]:
            return time.perf_counter() - started, job
        time.sleep(0.05)


async def ceiling_copy(dsn: str, brand_id: uuid.UUID, body: bytes) -> float:
    """A raw binary COPY of the rows the capture wrote, into empty copies of the tables."""
    events = json.loads(body)["epcisBody"]["eventList"]
    checked = [check_event(i, e) for i, e in enumerate(events)]
    rows = [
        (brand_id, i, c.event_id, c.event_hash, c.type, c.action, c.event_time, c.biz_step,
         c.disposition, c.read_point, c.biz_location, None, json.dumps(c.body))
        for i, c in enumerate(checked)
    ]  # fmt: skip
    epcs = [(brand_id, epc, i) for i, c in enumerate(checked) for epc in c.epcs]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "create table ceiling_events (like epcis_events including all);"
            "create table ceiling_epcs (like epcis_event_epcs including all)"
        )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("ceiling_events", records=rows, columns=EVENT_COLUMNS)
            await conn.copy_records_to_table(
                "ceiling_epcs", records=epcs, columns=("brand_id", "epc", "event")
            )
        elapsed = time.perf_counter() - started
        await conn.execute("drop table ceiling_events; drop table ceiling_epcs")
        return elapsed
    finally:
        await conn.close()


def filler_rows(
    brand_id: uuid.UUID, first: int, count: int, epc_pool: int, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events, epcs = [], []
    for ident in range(first, first + count):
        epc = f"https://id.gs1.org/01/09506000000001/21/F{rng.randrange(epc_pool)}"
        at = start + timedelta(seconds=ident)
        body = json.dumps({"type": "ObjectEvent", "eventTime": at.isoformat(),
                           "eventTimeZoneOffset": "+00:00", "action": "OBSERVE",
                           "bizStep": "receiving", "epcList": [epc],
                           "eventID": f"urn:uuid:{uuid.UUID(int=ident)}"})  # fmt: skip
        events.append(
            (brand_id, ident, f"urn:uuid:{uuid.UUID(int=ident)}", f"ni:///fill;{ident}",
             "ObjectEvent", "OBSERVE", at, "receiving", None, None, None, None, body)
        )  # fmt: skip
        epcs.append((brand_id, epc, ident))
    return events, epcs


async def fill(dsn: str, brand_id: uuid.UUID, stored: int, epc_pool: int) -> float:
    """``stored`` events for the brand, written by COPY with the indexes built after."""
    rng = random.Random(7)  # noqa: S311 - a reproducible spread of EPCs, not a secret
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        await conn.execute("set maintenance_work_mem = '512MB'")
        first: int = await conn.fetchval("select coalesce(max(id), 0) + 1 from epcis_events")
        for statement in _DROP:
            await conn.execute(statement)
        done = 0
        while done < stored:
            count = min(CHUNK, stored - done)
            events, epcs = filler_rows(brand_id, first + done, count, epc_pool, rng)
            await conn.copy_records_to_table("epcis_events", records=events, columns=EVENT_COLUMNS)
            await conn.copy_records_to_table(
                "epcis_event_epcs", records=epcs, columns=("brand_id", "epc", "event")
            )
            done += count
            print(f"  filled {done:,} events", file=sys.stderr, flush=True)
        for statement in INDEXES:
            await conn.execute(statement)
        await conn.execute(
            "select setval(pg_get_serial_sequence('epcis_events', 'id'), max(id)) from epcis_events"
        )
        await conn.execute("vacuum (analyze) epcis_events, epcis_event_epcs")
        await conn.execute("checkpoint")
    finally:
        await conn.close()
    return time.perf_counter() - started


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def bare_sql(
    dsn: str, brand_id: uuid.UUID, epcs: list[str], gin_too: bool
) -> tuple[list[float], list[float] | None]:
    """The captured events of one EPC by the child table; and by a GIN array index."""
    conn = await asyncpg.connect(dsn)
    try:
        child = "select e.body from epcis_event_epcs x join epcis_events e on e.brand_id = x.brand_id and e.id = x.event where x.brand_id = $1 and x.epc = $2 order by e.record_time, e.id"  # noqa: E501
        times = []
        for epc in epcs:
            started = time.perf_counter()
            await conn.fetch(child, brand_id, epc)
            times.append((time.perf_counter() - started) * 1000)
        if not gin_too:
            return times, None
        print("  building the GIN alternative", file=sys.stderr, flush=True)
        await conn.execute("set maintenance_work_mem = '512MB'")
        await conn.execute(
            "create table gin_events as select e.brand_id, e.id, e.record_time, e.body,"
            " array[x.epc] as epcs from epcis_events e join epcis_event_epcs x"
            " on x.brand_id = e.brand_id and x.event = e.id;"
            "create index on gin_events using gin (epcs);"
            " alter table gin_events add primary key (brand_id, id)"
        )
        await conn.execute("vacuum (analyze) gin_events")
        await conn.execute("checkpoint")
        gin = []
        for epc in epcs:
            started = time.perf_counter()
            await conn.fetch(
                "select body from gin_events where brand_id = $1 and epcs @> array[$2]"
                " order by record_time, id",
                brand_id,
                epc,
            )
            gin.append((time.perf_counter() - started) * 1000)
        sizes = await conn.fetchrow(
            "select pg_total_relation_size('epcis_event_epcs') as child,"
            " (select sum(pg_relation_size(i.indexrelid)) from pg_index i"
            "  where i.indrelid = 'gin_events'::regclass and not i.indisprimary) as gin"
        )
        assert sizes is not None
        row("size: epcis_event_epcs (table + index)", sizes["child"] / 2**20, "MB")
        row("size: the GIN index alone", sizes["gin"] / 2**20, "MB")
        await conn.execute("drop table gin_events")
        return times, gin
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=size, default=100_000, help="events in the document")
    parser.add_argument("--stored", type=size, default=10_000_000, help="events stored")
    parser.add_argument("--queries", type=int, default=500, help="EPC histories read")
    parser.add_argument("--pages", type=int, default=100, help="pages of the brand's events")
    parser.add_argument("--no-gin", action="store_true", help="skip the GIN comparison")
    parser.add_argument("--log", type=Path, help="keep the service's output in this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-epcis-") as work:
        service = Service(Path(work) / "data", log=args.log)
        try:
            run(service, args)
        finally:
            service.stop()


def run(service: Service, args: argparse.Namespace) -> None:
    http = httpx.Client(base_url=service.url, timeout=60)
    key, _product = setup_brand(http, service.admin)
    product = http.get("/v1/products", headers={"Authorization": f"Bearer {key}"}).json()
    brand_id, gtin = uuid.UUID(product["items"][0]["brand_id"]), product["items"][0]["gtin"]
    print(f"\n== capture of one document of {args.events:,} events", flush=True)
    for commissioning in (True, False):
        body = make_document(gtin, args.events, commissioning, "C" if commissioning else "R")
        elapsed, job = capture(http, key, body)
        what = "commissioning (registers units)" if commissioning else "receiving (stored only)"
        if not job["success"]:
            raise SystemExit(f"the capture failed: {job['errors'][:3]}")
        row(f"capture: {what}", args.events / elapsed, "events/s",
            f"{elapsed:.1f} s for {len(body) / 2**20:.0f} MB")  # fmt: skip
        if not commissioning:
            copy = asyncio.run(ceiling_copy(service.dsn, brand_id, body))
            row("ceiling: raw COPY of the same rows", args.events / copy, "events/s",
                f"{copy:.1f} s")  # fmt: skip
    print(f"\n== one EPC's history with {args.stored:,} events stored", flush=True)
    pool_size = max(1, args.stored // 4)
    took = asyncio.run(fill(service.dsn, brand_id, args.stored, pool_size))
    row("fill (COPY, indexes after, vacuum)", took, "s")
    rng = random.Random(11)  # noqa: S311 - which EPCs are read, not a secret
    epcs = [f"https://id.gs1.org/01/09506000000001/21/F{rng.randrange(pool_size)}"
            for _ in range(args.queries)]  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    for epc in epcs[:20]:  # warm the connections and the plan caches
        http.get(f"/v1/epcis/epcs/{epc}/events", headers=headers)
    api, counts = [], []
    for epc in epcs:
        started = time.perf_counter()
        r = http.get(f"/v1/epcis/epcs/{epc}/events", headers=headers)
        api.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"query answered {r.status_code}: {r.text[:300]}")
        counts.append(len(r.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]))
    row("events per history (mean)", statistics.mean(counts), "events")
    row("API: GET /v1/epcis/epcs/{epc}/events p50", percentile(api, 50), "ms")
    row("API: GET /v1/epcis/epcs/{epc}/events p95", percentile(api, 95), "ms")
    pages, params = [], {"perPage": "100"}
    for _ in range(args.pages):  # the brand's whole history, page after page
        started = time.perf_counter()
        r = http.get("/v1/epcis/events", params=params, headers=headers)
        pages.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200 or "link" not in r.headers:
            raise SystemExit(f"paging stopped: {r.status_code} {r.text[:300]}")
        params["nextPageToken"] = r.headers["link"].split("nextPageToken=")[1].split(">")[0]
    row("API: GET /v1/epcis/events?perPage=100, next pages p50", percentile(pages, 50), "ms")
    row("API: GET /v1/epcis/events?perPage=100, next pages p95", percentile(pages, 95), "ms")
    child, gin = asyncio.run(bare_sql(service.dsn, brand_id, epcs, not args.no_gin))
    row("ceiling: bare SQL, child table p50", percentile(child, 50), "ms")
    row("ceiling: bare SQL, child table p95", percentile(child, 95), "ms")
    if gin is not None:
        row("alternative: GIN array index p50", percentile(gin, 50), "ms")
        row("alternative: GIN array index p95", percentile(gin, 95), "ms")


if __name__ == "__main__":
    main()
