"""A revocation reaches every API process of a real `transparency serve`, whatever happens
to the notifications that carry it: after PostgreSQL restarts, when a notification is lost,
and /readyz says so while a process cannot listen.

Before, each process heard revocations on one LISTEN connection that was never made again:
after a restart only the process that handled a revocation knew of it, the others accepted
the revoked API key and the revoked signing key's codes for as long as they ran, and
/readyz said ready.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.served import Served, free_port
from tests.support.world import TEST_PREFIX, bearer, new_gtin
from transparency.domain.api_keys import new_api_key

BOUND = 2.0  # TRANSPARENCY_KEY_CACHE_SECONDS given to serve below
# A revocation is heard at once through NOTIFY, and within BOUND without it; the deadline
# leaves room for a busy machine (the old code never refused, however long it was given).
WITHIN = BOUND + 8
PROCESSES = 2
ADMIN = str(new_api_key())


@pytest.fixture
def served(data_home: Path) -> Iterator[Served]:
    served = Served(
        data_home, free_port(), TRANSPARENCY_ADMIN_KEY=ADMIN,
        TRANSPARENCY_WORKERS=str(PROCESSES), TRANSPARENCY_KEY_CACHE_SECONDS=str(BOUND),
    )  # fmt: skip
    served.wait_ready()
    yield served
    code, _, err = served.stop()
    assert code == 0, err


def sql(data_dir: Path, query: str, *args: object) -> Any:
    """One value from the embedded PostgreSQL of ``data_dir``, as its superuser."""

    async def run() -> Any:
        conn = await asyncpg.connect(f"postgresql://postgres:@/postgres?host={data_dir / 'pg'}")
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def restart_postgresql(data_dir: Path) -> None:
    with warnings.catch_warnings():  # pgserver's import warns without XDG_RUNTIME_DIR
        warnings.simplefilter("ignore", UserWarning)
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made per binary

    pgdata = data_dir / "pg"
    user = "pgserver" if os.geteuid() == 0 else None  # as pgserver runs it (embedded.py)
    pg_ctl(["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"], pgdata=pgdata, user=user)


@dataclass
class World:
    station: str
    spare_brand_key: str  # the API key revoked
    spare_brand_key_id: str
    brand_key: str
    signing_key_id: int  # the signing key revoked
    gtin: str
    units: Iterator[str]  # codes signed by it, each claimed once


def build_world(served: Served) -> World:
    admin = bearer(ADMIN)
    with httpx.Client(base_url=served.url, timeout=30) as http:
        brand = {"name": "Acme", "gs1_prefixes": [TEST_PREFIX]}  # new_gtin()'s
        r = http.post("/v1/brands", json=brand, headers=admin)
        brand_id, brand_key = r.json()["brand"]["id"], r.json()["api_key"]["key"]
        spare = http.post(
            "/v1/api-keys", json={"role": "brand", "brand_id": brand_id}, headers=admin
        ).json()
        site = http.post("/v1/sites", json={"name": "DC1"}, headers=admin).json()
        station = http.post(
            "/v1/api-keys", json={"role": "station", "site_id": site["id"]}, headers=admin
        ).json()["key"]
        product = http.post(
            "/v1/products", json={"gtin": new_gtin(), "name": "x"}, headers=bearer(brand_key)
        ).json()
        r = http.post(
            f"/v1/products/{product['id']}/code-batches",
            json={"count": 300},
            headers=bearer(brand_key),
        )
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        deadline = time.monotonic() + 60
        while (batch := http.get(location, headers=bearer(brand_key)).json())["status"] != "done":
            assert time.monotonic() < deadline, batch
            time.sleep(0.05)
        text = http.get(f"{location}/codes.csv", headers=bearer(brand_key)).text
    units = [row["code"] for row in csv.DictReader(io.StringIO(text))]
    return World(
        station, spare["key"], spare["id"], brand_key, batch["key_id"], product["gtin"],
        iter(units),
    )  # fmt: skip


Probe = Callable[[], httpx.Response]


def every_process_answers(
    probe: Probe, wanted: Callable[[httpx.Response], bool], within: float
) -> list[tuple[str, bool]]:
    """Probe, each time on a new connection (the kernel spreads them over the processes),
    until every API process has answered as wanted twice running; what each answered."""
    record: list[tuple[str, bool]] = []
    streak: dict[str, int] = {}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        r = probe()
        process, ok = r.headers["x-request-id"][:16], wanted(r)
        record.append((process, ok))
        streak[process] = streak.get(process, 0) + 1 if ok else 0
        if len(streak) == PROCESSES and min(streak.values()) >= 2:
            return record
        time.sleep(0.05)
    raise AssertionError(f"not every process answered as wanted within {within} s: {record}")


def with_spare_key(served: Served, world: World) -> Probe:
    return lambda: httpx.get(
        f"{served.url}/v1/signing-keys", headers=bearer(world.spare_brand_key), timeout=10
    )


def claiming_a_unit(served: Served, world: World) -> Probe:
    def claim() -> httpx.Response:
        unit = next(world.units, None)
        assert unit is not None, "every unit was claimed: the revocation never held"
        return httpx.post(
            f"{served.url}/v1/fulfilment/verifications",
            json={"scan": unit, "gtin": world.gtin, "shipment_id": "S-1"},
            headers=bearer(world.station),
            timeout=10,
        )

    return claim


def passed(r: httpx.Response) -> bool:
    return r.status_code == 200 and r.json()["result"] == "pass"


def key_revoked(r: httpx.Response) -> bool:
    return r.status_code == 200 and r.json()["reason"] == "key_revoked"


def readiness_of(served: Served) -> Probe:
    return lambda: httpx.get(f"{served.url}/readyz", timeout=10)


def ready(r: httpx.Response) -> bool:
    return r.status_code == 200


def warm(served: Served, world: World) -> None:
    """Every process has the spare key cached and the signing key in its keyring."""
    every_process_answers(with_spare_key(served, world), lambda r: r.status_code == 200, 30)
    every_process_answers(claiming_a_unit(served, world), passed, 30)


def test_revocations_after_a_postgresql_restart_hold_in_every_process(
    served: Served, data_home: Path
) -> None:
    world = build_world(served)
    warm(served, world)

    restart_postgresql(data_home)
    readyz = readiness_of(served)
    every_process_answers(readyz, ready, 30)
    admin = bearer(ADMIN)
    with httpx.Client(base_url=served.url, timeout=30) as http:
        r = http.delete(f"/v1/api-keys/{world.spare_brand_key_id}", headers=admin)
        assert r.status_code == 204, r.text
        r = http.post(
            f"/v1/signing-keys/{world.signing_key_id}/revoke",
            json={"reason": "leaked"},
            headers=bearer(world.brand_key),
        )
        assert r.status_code == 200, r.text

    every_process_answers(with_spare_key(served, world), lambda r: r.status_code == 401, WITHIN)
    every_process_answers(claiming_a_unit(served, world), key_revoked, WITHIN)


def test_a_revocation_whose_notification_is_lost_holds_within_the_bound(
    served: Served, data_home: Path
) -> None:
    world = build_world(served)
    warm(served, world)

    # Revoked behind the service's back: no NOTIFY, as if it had been lost.
    sql(data_home, "update api_keys set revoked_at = now() where id = $1", world.spare_brand_key_id)
    sql(
        data_home,
        "update signing_keys set status = 'revoked', revoked_at = now() where id = $1",
        world.signing_key_id,
    )

    every_process_answers(with_spare_key(served, world), lambda r: r.status_code == 401, WITHIN)
    every_process_answers(claiming_a_unit(served, world), key_revoked, WITHIN)


# Each API process's listener, in the old code (no name, its last statement a LISTEN)
# too; not the job process's, which has a name of its own and no /readyz.
LISTENERS = (
    "select count(pg_terminate_backend(pid)) from pg_stat_activity"
    " where application_name = 'transparency listener'"
    "    or (query ilike 'listen %' and application_name <> 'transparency jobs listener')"
)


def reload_configuration(data_dir: Path) -> None:
    """pg_reload_conf(), without a connection (one may be refused by then)."""
    postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGHUP)


def end_listeners_and_refuse_new_connections(data_dir: Path) -> int:
    """Refuse every new connection (the pools' open ones go on serving), then end each
    process's listener; how many were ended."""
    hba = data_dir / "pg" / "pg_hba.conf"
    dsn = f"postgresql://postgres:@/postgres?host={data_dir / 'pg'}"

    async def run() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            hba.write_text("local all all reject\nhost all all all reject\n" + hba.read_text())
            reload_configuration(data_dir)
            deadline = time.monotonic() + 30
            while True:  # the reload is signalled: wait until it holds
                assert time.monotonic() < deadline, "pg_hba.conf was not reloaded"
                try:
                    await (await asyncpg.connect(dsn)).close()
                except asyncpg.InvalidAuthorizationSpecificationError:
                    break
                await asyncio.sleep(0.05)
            ended: int = await conn.fetchval(LISTENERS)
            return ended
        finally:
            await conn.close()

    return asyncio.run(run())


def test_readyz_fails_while_a_process_cannot_listen(served: Served, data_home: Path) -> None:
    readyz = readiness_of(served)
    every_process_answers(readyz, ready, 30)
    hba = data_home / "pg" / "pg_hba.conf"
    original = hba.read_text()
    try:
        assert end_listeners_and_refuse_new_connections(data_home) == PROCESSES
        every_process_answers(readyz, lambda r: r.status_code == 503, 30)
        assert readyz().json()["type"].endswith("/unavailable")
    finally:
        hba.write_text(original)
        reload_configuration(data_home)
    every_process_answers(readyz, ready, 30)
