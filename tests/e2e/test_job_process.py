"""`serve` with several API processes runs batch jobs in a process of its own, at a lower
CPU priority: the API processes only queue them, and a job process that dies is replaced.
`transparency jobs` is that process alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.test_serve import api_processes, named
from tests.support.served import Served, free_port
from tests.support.world import TEST_PREFIX, gtin14
from transparency.domain.api_keys import new_api_key
from transparency.serve import jobs


def job_processes(served: Served) -> list[int]:
    return named(served.proc.pid, jobs.NAME)


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def batch_status(http: httpx.Client, location: str, brand: dict[str, str]) -> str:
    status: str = http.get(location, headers=brand).json()["status"]
    return status


def wait_done(http: httpx.Client, location: str, brand: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while (status := batch_status(http, location, brand)) != "done":
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def test_jobs_run_in_their_own_process_and_only_there(data_home: Path) -> None:
    admin = str(new_api_key())
    served = Served(data_home, free_port(), TRANSPARENCY_ADMIN_KEY=admin, TRANSPARENCY_WORKERS="2")
    served.wait_ready()
    (job,) = job_processes(served)
    assert niceness(job) == jobs.NICE
    assert os.sched_getscheduler(job) == os.SCHED_IDLE  # preempted by any claim that wakes
    # ... and kept off one core, which only the claims' processes use (workers.background)
    allowed = os.sched_getaffinity(0)
    expected = allowed - {min(allowed)} if len(allowed) > 1 else allowed
    assert os.sched_getaffinity(job) == expected
    assert all(os.sched_getaffinity(api) == allowed for api in api_processes(served))
    assert len(api_processes(served)) == 2

    with httpx.Client(base_url=served.url, timeout=30) as http:
        r = http.post(
            "/v1/brands",
            json={"name": "Acme", "gs1_prefixes": [TEST_PREFIX]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        brand = {"Authorization": f"Bearer {r.json()['api_key']['key']}"}
        product = http.post(
            "/v1/products", json={"gtin": gtin14("0950600013435"), "name": "x"}, headers=brand
        ).json()

        def queue() -> str:
            r = http.post(
                f"/v1/products/{product['id']}/code-batches", json={"count": 10}, headers=brand
            )
            assert r.status_code == 202, r.text
            return r.headers["location"]

        # Stopped, the job process runs nothing, and no API process runs the batch instead
        # (a job runner polls twice a second); the API answers all the same.
        os.kill(job, signal.SIGSTOP)
        try:
            waiting = queue()
            time.sleep(2)
            assert batch_status(http, waiting, brand) == "pending"
            assert http.get("/readyz").status_code == 200
        finally:
            os.kill(job, signal.SIGCONT)
        wait_done(http, waiting, brand)  # the queued batch's notification woke it

        os.kill(job, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not (found := job_processes(served)) or found == [job]:
            assert time.monotonic() < deadline, "the job process was not replaced"
            time.sleep(0.2)
        (replacement,) = found
        assert niceness(replacement) == jobs.NICE
        wait_done(http, queue(), brand)

    code, _, err = served.stop()
    assert code == 0, err
    assert not Path(f"/proc/{replacement}").exists()


def test_the_jobs_command_needs_a_database_of_its_own(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "transparency", "jobs"],
        env={**env, "TRANSPARENCY_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "transparency: `jobs` needs DATABASE_URL: `serve` runs the jobs of its embedded database"
    ]
