"""An issuance job survives its process being killed: no code lost, none duplicated."""

from __future__ import annotations

import csv
import io
import signal
import time
from pathlib import Path

import httpx

from tests.support.served import Served, free_port
from tests.support.world import TEST_PREFIX, gtin14
from transparency.domain import codes
from transparency.domain.api_keys import new_api_key

COUNT = 120_000


def test_a_killed_job_resumes_after_restart(data_home: Path) -> None:
    admin = str(new_api_key())
    env = {
        "TRANSPARENCY_ADMIN_KEY": admin,
        "TRANSPARENCY_JOB_LEASE_SECONDS": "2",
        "TRANSPARENCY_JOB_CHUNK_SIZE": "2000",
    }
    first = Served(data_home, free_port(), **env)
    first.wait_ready()
    http = httpx.Client(base_url=first.url, timeout=30)
    r = http.post(
        "/v1/brands",
        json={"name": "Acme", "gs1_prefixes": [TEST_PREFIX]},  # the GTIN's below
        headers={"Authorization": f"Bearer {admin}"},
    )
    brand = {"Authorization": f"Bearer {r.json()['api_key']['key']}"}
    product = http.post(
        "/v1/products", json={"gtin": gtin14("0950600013435"), "name": "x"}, headers=brand
    ).json()
    r = http.post(
        f"/v1/products/{product['id']}/code-batches", json={"count": COUNT}, headers=brand
    )
    location = r.headers["location"]

    progress = 0
    deadline = time.monotonic() + 60
    while not 0 < progress < COUNT and time.monotonic() < deadline:
        progress = http.get(location, headers=brand).json()["progress"]
    assert 0 < progress < COUNT, f"the job finished before it could be interrupted ({progress})"
    first.proc.send_signal(signal.SIGKILL)  # a crash: no clean-up of any kind
    first.finish()
    http.close()

    second = Served(data_home, free_port(), **env)
    second.wait_ready()
    http = httpx.Client(base_url=second.url, timeout=30)
    batch = http.get(location, headers=brand).json()
    if batch["status"] != "done":  # nothing is visible before the batch completes
        early = http.get(f"{location}/codes.csv", headers=brand)
        assert early.status_code == 409
    deadline = time.monotonic() + 120
    while batch["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
        batch = http.get(location, headers=brand).json()
    assert batch["status"] == "done", batch
    assert batch["progress"] == COUNT

    text = http.get(f"{location}/codes.csv", headers=brand).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == COUNT
    assert len({row["code"] for row in rows}) == COUNT
    key_ids = {codes.parse(row["code"]).key_id for row in rows}
    assert key_ids == {batch["key_id"]}
    http.close()
    second.stop()
    assert not (data_home / "pg" / "postmaster.pid").exists()  # the killed holder was forgotten
