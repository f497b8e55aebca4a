"""Codes benchmark: each figure printed beside its goal, ceilings measured in the same run.

    .venv/bin/python bench/bench_codes.py            # 1M-code issuance, crypto rates, 1M import
    .venv/bin/python bench/bench_codes.py --memory   # also memory during a 10M-code job (minutes)

It starts the real service (`transparency serve`, embedded PostgreSQL in a temporary
directory, default settings: one API process per core) on a free port and talks to it over
HTTP, as a brand would. The service's memory is that of `serve`, its API processes and
their workers together, PostgreSQL aside: their RSS summed (which counts the interpreter
and every shared library again in each process) is the figure, and their PSS summed (each
page once, as the kernel charges a service's cgroup) is printed beside it. It is measured
during a 10M-code job twice: on the service that has just run the 1M issuance and import
(reported: the import leaves its API process's heap larger, see the README), and on a
fresh one, whose figure is compared with the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
from service import Service, issue, setup_brand

from transparency.domain import codes
from transparency.domain.codes import Payload

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("code", "brand_id", "product_id", "batch_id", "lot", "expiry", "state")


def row(name: str, value: float, unit: str, goal: str, ok: bool | None = None) -> None:
    """One figure; ``ok`` None for a figure reported without a goal of its own."""
    result = "" if ok is None else "PASS" if ok else "FAIL"
    print(f"{name:<46} {value:>12,.0f} {unit:<10} goal {goal:<28} {result}")


async def raw_copy_rate(dsn: str, count: int, chunk: int) -> float:
    """The ceiling: COPY of ready-made unit rows into the same table, same chunking."""
    conn = await asyncpg.connect(dsn)
    try:
        first = await conn.fetchrow("select brand_id, product_id, id from code_batches limit 1")
        assert first is not None  # the benchmark issued a batch before this
        brand, product, batch = first
        rows = [
            (
                "TPX" + secrets.token_hex(13)[:27].upper(),
                brand,
                product,
                batch,
                None,
                None,
                "active",
            )
            for _ in range(count)
        ]
        started = time.perf_counter()
        for i in range(0, count, chunk):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "units", records=rows[i : i + chunk], columns=COLUMNS
                )
        return count / (time.perf_counter() - started)
    finally:
        await conn.close()


async def empty_units(dsn: str) -> None:
    """No units left, as in a new deployment (the benchmark's own database)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("truncate units")
        await conn.execute("checkpoint")  # the truncation's writes are not the next one's
    finally:
        await conn.close()


def ceiling_row(name: str, ceiling: float, rate: float) -> None:
    print(f"{name:<46} {ceiling:>12,.0f} {'per s':<10} (figure is {100 * rate / ceiling:.0f}%)")


def crypto_rates() -> None:
    os.sched_setaffinity(0, {0})
    secret = os.urandom(32)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from nacl.signing import SigningKey

    private = SigningKey.generate()
    public = bytes(private.verify_key)
    payloads = [Payload(17, secrets.randbits(codes.SERIAL_BITS)) for _ in range(20000)]

    message = b"transparency/v1/offline" + payloads[0].to_bytes()
    signature = private.sign(message).signature
    public_key = private.verify_key
    openssl = Ed25519PrivateKey.from_private_bytes(bytes(private))

    def per_second(fn: Callable[[], object], n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return n / (time.perf_counter() - started)

    def best(*measures: Callable[[], float]) -> list[float]:
        """Each rate's best of five rounds, the measures taken in turn within each round.

        Noise on a shared machine only ever slows a round down (timeit takes the minimum
        time for the same reason); alternating keeps a figure and its ceiling side by side.
        """
        rounds = [[measure() for measure in measures] for _ in range(5)]
        return [max(column) for column in zip(*rounds, strict=True)]

    def making() -> float:
        started = time.perf_counter()
        made = [codes.sign_offline(p, private) for p in payloads]
        return len(made) / (time.perf_counter() - started)

    def tag_checks() -> float:
        # What every check does first (authenticity.check): read the text, check the tag.
        started = time.perf_counter()
        good = 0
        for t in texts:
            bare = codes.read_bare(t)
            good += bare is not None and codes.tag_matches(bare.payload, bare.tag, secret)
        rate = len(texts) / (time.perf_counter() - started)
        assert good == len(texts)
        return rate

    def signature_checks() -> float:
        started = time.perf_counter()
        good = sum(codes.verify_offline(codes.parse(t), public) for t in offline)
        rate = len(offline) / (time.perf_counter() - started)
        assert good == len(offline)
        return rate

    # Ceilings: the bare primitive (libsodium through PyNaCl, or hmac.digest) on the same
    # core, measured in turn with each figure; the code adds parsing, encoding and checks.
    texts = [codes.sign_transparency(p, secret) for p in payloads[:4000]] * 5
    offline = [codes.sign_offline(p, private) for p in payloads[:4000]]
    openssl_public = openssl.public_key()
    rate, ceiling, other = best(
        making,
        lambda: per_second(lambda: private.sign(message), 4000),
        lambda: per_second(lambda: openssl.sign(message), 2000),
    )
    row("offline codes made (one core)", rate, "codes/s", ">= 25,000", rate >= 25_000)
    ceiling_row("  ceiling: bare Ed25519 sign (libsodium)", ceiling, rate)
    ceiling_row("  for comparison: OpenSSL's sign", other, rate)

    # The check reuses SHA-256 states that have absorbed the key's pads (codes._tag_digest):
    # the same reuse, with no parsing around it, is shown beside the one-shot primitive.
    padded = secret.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def keyed_hmac() -> bytes:
        h = inner.copy()
        h.update(message)
        o = outer.copy()
        o.update(h.digest())
        return o.digest()

    assert keyed_hmac() == hmac.digest(secret, message, "sha256")
    rate, ceiling, other = best(
        tag_checks,
        lambda: per_second(lambda: hmac.digest(secret, message, "sha256"), 40_000),
        lambda: per_second(keyed_hmac, 40_000),
    )
    row("tag check: parse + HMAC (one core)", rate, "codes/s", ">= 150,000", rate >= 150_000)
    ceiling_row("  ceiling: bare HMAC-SHA256 (hmac.digest)", ceiling, rate)
    ceiling_row("  ceiling, the same reuse: keyed-state HMAC", other, rate)

    rate, ceiling, other = best(
        signature_checks,
        lambda: per_second(lambda: public_key.verify(message, signature), 2000),
        lambda: per_second(lambda: openssl_public.verify(signature, message), 1000),
    )
    row("offline signature check (one core)", rate, "codes/s", ">= 10,000", rate >= 10_000)
    ceiling_row("  ceiling: bare Ed25519 verify (libsodium)", ceiling, rate)
    ceiling_row("  for comparison: OpenSSL's verify", other, rate)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def import_rate(http: httpx.Client, key: str, product: str, gtin: str, count: int) -> float:
    lines = "\n".join(
        f"]d201{gtin}21{secrets.token_hex(8).upper()}\x1d10LOT{i % 7}" for i in range(count)
    )
    auth = {"Authorization": f"Bearer {key}", "content-type": "text/plain"}
    started = time.perf_counter()
    r = http.post(f"/v1/products/{product}/serial-imports", content=lines.encode(), headers=auth)
    location = r.headers["location"]
    while True:
        batch = http.get(location, headers=auth).json()
        if batch["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    if batch["status"] != "done" or batch["report"]["accepted"] != count:
        raise SystemExit(f"import failed: {batch['status']} {batch.get('report', {})}")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--import-count", type=int, default=1_000_000)
    parser.add_argument("--memory", action="store_true", help="also a 10M-code job")
    parser.add_argument("--only-import", action="store_true", help="skip all but the import")
    args = parser.parse_args()
    print(f"{'figure':<46} {'value':>12} {'unit':<10} {'goal':<33} result")
    if not args.only_import:
        crypto_rates()
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(Path(tmp))
        try:
            http = httpx.Client(base_url=service.url, timeout=600)
            key, product = setup_brand(http, service.admin)
            gtin = http.get(
                f"/v1/products/{product}", headers={"Authorization": f"Bearer {key}"}
            ).json()["gtin"]
            issue(http, key, product, 10_000)  # warm up: worker process, caches
            if args.only_import:
                rate = import_rate(http, key, product, gtin, args.import_count)
                row(f"import of {args.import_count:,} GS1 element strings", rate, "rows/s",
                    ">= 50,000", rate >= 50_000)  # fmt: skip
                return
            # Each into an empty units table: a COPY into a table that already holds the
            # other's million rows costs the server more (about 1.3x the CPU a row, its
            # indexes deeper and less of them cached), which once favoured the figure.
            # The ceiling is the better of two, one on each side of the figure: noise on a
            # shared machine only slows a run down.
            dsn = service.dsn
            ceilings = []
            for step in ("ceiling", "figure", "ceiling"):
                asyncio.run(empty_units(dsn))
                if step == "ceiling":
                    ceilings.append(asyncio.run(raw_copy_rate(dsn, args.count, 50_000)))
                else:
                    rate = args.count / issue(http, key, product, args.count)
            ceiling = max(ceilings)
            row(f"issuance of {args.count:,} codes, request to downloadable", rate, "codes/s",
                ">= 100,000", rate >= 100_000)  # fmt: skip
            row("raw COPY into units (ceiling, same run)", ceiling, "rows/s", "-")
            row("issuance / raw COPY", 100 * rate / ceiling, "%", ">= 50%", rate >= ceiling / 2)
            rate = import_rate(http, key, product, gtin, args.import_count)
            row(
                f"import of {args.import_count:,} GS1 element strings",
                rate,
                "rows/s",
                ">= 50,000",
                rate >= 50_000,
            )
            if args.memory:  # the same service, after the 1M issuance and import above
                memory_during_job(service, http, key, product, "after the jobs above", None)
        finally:
            service.stop()
    if args.memory:
        with tempfile.TemporaryDirectory() as tmp:
            service = Service(Path(tmp))
            try:
                http = httpx.Client(base_url=service.url, timeout=600)
                key, product = setup_brand(http, service.admin)
                issue(http, key, product, 10_000)  # warm up: worker process, caches
                memory_during_job(service, http, key, product, "fresh service", 300)
            finally:
                service.stop()


def memory_during_job(
    service: Service, http: httpx.Client, key: str, product: str, when: str, goal: int | None
) -> None:
    """The service's memory during a 10M-code job: RSS summed over its processes (each
    shared library counted again in each), and PSS summed (each page once)."""
    peaks = [0.0, 0.0, 0.0]  # PSS summed, RSS summed, largest process's RSS

    def sample() -> None:
        for i, value in enumerate(service.memory_mb()):
            peaks[i] = max(peaks[i], value)

    seconds = issue(http, key, product, 10_000_000, sample=sample)
    pss, rss, largest = peaks
    if goal is None:
        row(f"10M-code job, {when}: RSS summed (peak)", rss, "MB", "(reported)")
    else:
        row(f"10M-code job, {when}: RSS summed (peak)", rss, "MB", f"< {goal}", rss < goal)
    row("  PSS summed (peak)", pss, "MB", "(reported)")
    row("  largest process's RSS (peak)", largest, "MB", "(reported)")
    row("  job rate", 10_000_000 / seconds, "codes/s", "(reported)")


if __name__ == "__main__":
    main()
