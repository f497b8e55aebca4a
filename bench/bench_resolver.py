"""The resolver against the customer check, in the same run, under the same load.

A real `transparency serve` (embedded PostgreSQL, one API process per core); a brand with a
product, GS1 codes issued and links at the product, the lot and a unit. Each target gets
the same closed-loop load (``--connections`` concurrent requests from one asyncio client
process, ``--seconds`` each, in turns so they never share the machine) and is measured by
completed requests per second and p50/p99 latency:

* resolver: ``GET /01/{gtin}/21/{serial}``, the label's URI, answered 307 to the default;
* resolver, linkset: the same with ``Accept: application/linkset+json``;
* customer check: ``GET /v1/verify?code=``, the JSON verdict a phone's app asks for;
* verdict page: ``GET /verify/01/{gtin}/21/{serial}``, where the 307 leads.

A phone that scans a label makes the first request then the last one; the resolver's
share of that is its latency over both. The client is Python, so the rates are those one
client process drives: compare the rows with each other, not with bench_verification.py.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from service import Service, setup_brand


def _links(http: httpx.Client, key: str, product: str, serial: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    for body in (
        {"link_type": "gs1:pip", "href": "https://b.example/en", "language": "en"},
        {"link_type": "gs1:pip", "href": "https://b.example/fr", "language": "fr"},
        {"link_type": "gs1:instructions", "href": "https://b.example/how.pdf"},
        {"link_type": "gs1:certificationInfo", "href": "https://b.example/c", "lot": "L1"},
        {"link_type": "gs1:recallStatus", "href": "https://b.example/r", "serial": serial},
    ):
        r = http.post(f"/v1/products/{product}/links", json=body, headers=auth)
        assert r.status_code == 201, r.text


async def _load(
    url: str, paths: list[str], headers: dict[str, str], status: int, conns: int, seconds: float
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of ``conns`` closed loops over ``paths`` for ``seconds``."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def loop(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                r = await client.get(paths[i % len(paths)])
                latencies.append(time.perf_counter() - started)
                if r.status_code != status:
                    raise SystemExit(f"{paths[i % len(paths)]}: {r.status_code} {r.text[:200]}")
                i += 1

        begun = time.perf_counter()
        await asyncio.gather(*(loop(n) for n in range(conns)))
        elapsed = time.perf_counter() - begun
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--codes", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-resolver-") as work:
        service = Service(
            Path(work) / "data",
            TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE="1000000000",
            TRANSPARENCY_CUSTOMER_BURST="1000000000",
            TRANSPARENCY_CUSTOMER_CHECKS_PER_SECOND="0",  # the capacity itself is measured
        )
        try:
            with httpx.Client(base_url=service.url, timeout=60) as http:
                key, product = setup_brand(http, service.admin)
                auth = {"Authorization": f"Bearer {key}"}
                r = http.post(
                    f"/v1/products/{product}/code-batches",
                    json={"count": args.codes, "format": "gs1", "lot": "L1"}, headers=auth,
                )  # fmt: skip
                batch = r.json()["id"]
                while (
                    http.get(f"/v1/code-batches/{batch}", headers=auth).json()["status"] != "done"
                ):
                    time.sleep(0.1)
                rows = list(csv.DictReader(io.StringIO(
                    http.get(f"/v1/code-batches/{batch}/codes.csv", headers=auth).text
                )))  # fmt: skip
                # The label's URI, on this service: /01/{gtin}/21/{serial}
                uris = [row["url"].split("/", 3)[3] for row in rows]
                serial = uris[0].rsplit("/", 1)[1]
                _links(http, key, product, serial)
            resolve = [f"/{u}" for u in uris]
            targets = [
                ("resolver (307)", resolve, {}, 307),
                ("resolver linkset", resolve, {"Accept": "application/linkset+json"}, 200),
                ("customer check /v1/verify", [f"/v1/verify?code={r['code']}" for r in rows],
                 {}, 200),
                ("verdict page /verify/01/...", [f"/verify/{u}" for u in uris], {}, 200),
            ]  # fmt: skip
            print(f"{'target':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
            for name, paths, headers, status in targets:
                rate, p50, p99 = asyncio.run(
                    _load(service.url, paths, headers, status, args.connections, args.seconds)
                )
                print(f"{name:32} {rate:9,.0f} {p50:8.2f} {p99:8.2f}", flush=True)
            print(
                f"\n{args.connections} connections from one Python client process, "
                f"{args.seconds:.0f} s per target, {len(uris)} units"
            )
        finally:
            service.stop()


if __name__ == "__main__":
    main()
