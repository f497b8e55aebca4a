"""Ctrl-C on `make serve` in a terminal: the signal reaches every process of the group (the
API processes, the job process and its pool's workers), and the stop prints no trace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.served import free_port
from tests.support.world import bearer, gtin14
from transparency.domain.api_keys import new_api_key
from transparency.runtime.workers import process_pool


def test_ctrl_c_on_serve_with_its_pools_at_work_prints_no_trace(data_home: Path) -> None:
    admin, port = str(new_api_key()), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "TRANSPARENCY_DATA_DIR": str(data_home),
        "TRANSPARENCY_PORT": str(port),
        "TRANSPARENCY_WORKERS": "2",
        "TRANSPARENCY_ADMIN_KEY": admin,
        "TRANSPARENCY_LOG_LEVEL": "WARNING",
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "transparency", "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a group of its own, as a terminal gives it
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 60
            while not _ready(http):
                assert serve.poll() is None, serve.communicate()
                assert time.monotonic() < deadline, "serve did not become ready"
                time.sleep(0.2)
            brand = http.post(
                "/v1/brands", json={"name": "Acme", "gs1_prefixes": ["9506000"]},
                headers=bearer(admin),
            ).json()["api_key"]["key"]  # fmt: skip
            product = http.post(
                "/v1/products", json={"gtin": gtin14("0950600013435"), "name": "Serum"},
                headers=bearer(brand),
            ).json()["id"]  # fmt: skip
            # An issuance starts the job process's pool of workers.
            batch = http.post(
                f"/v1/products/{product}/code-batches", json={"count": 100}, headers=bearer(brand)
            ).headers["location"]
            while http.get(batch, headers=bearer(brand)).json()["status"] != "done":
                assert time.monotonic() < deadline + 60, "the batch did not finish"
                time.sleep(0.2)
        os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = serve.communicate(timeout=120)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.communicate()
    assert serve.returncode == 0, err
    assert "Traceback" not in err, err
    assert "leaked" not in err, err  # multiprocessing's resource tracker: leaked semaphores


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def test_a_pool_worker_outlives_the_ctrl_c_its_pool_handles() -> None:
    """A worker Ctrl-C interrupted died in the pool's queue with a KeyboardInterrupt trace,
    and broke its pool; the pool's owner decides when its workers stop."""
    pool = process_pool(1)
    try:
        assert pool.submit(os.getpid).result(timeout=60) != os.getpid()  # the worker is up
        (worker,) = pool._processes.values()  # the executor's own table: no public way
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGINT)
        assert pool.submit(os.getpid).result(timeout=60) == worker.pid
    finally:
        pool.shutdown()
