"""``loadtest run``: locust's master and N workers in subprocesses, faults on time, then
the invariants checked through the API, the summary, the report and the verdict.

Locust (gevent) patches the standard library when imported; subprocesses keep that out of
this process, which only starts them, injects faults and reads the master's record.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtest import faults as faults_
from loadtest import history, report, summary
from loadtest.data import LoadData, read
from loadtest.errors import RunFailed, ScenarioError
from loadtest.scenario import Scenario

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
START_SECONDS = 60.0  # for the workers to connect and the master to start the run
END_SECONDS = 120.0
DEFAULT_WORKERS = max(1, os.cpu_count() or 1)
LOG_LEVEL = os.environ.get(
    "LOADTEST_LOG_LEVEL", "WARNING"
)  # INFO shows locust's steps  # past the plan: the ramp's judging, the drain, the last reports


@dataclass(frozen=True, slots=True)
class Options:
    workers: int = DEFAULT_WORKERS
    out: Path | None = None  # default: runs/<run id> beside the history file
    history: Path = Path("loadtest-runs") / "history.jsonl"
    faults: tuple[faults_.Fault, ...] = ()
    forwarded_for: bool = False
    master_bind: str = "127.0.0.1"  # 0.0.0.0 lets workers on other machines join
    master_port: int = 0  # 0: a free port
    remote_workers: int = 0  # workers started by hand (`loadtest worker`) the run waits for
    extra_env: dict[str, str] = field(default_factory=dict)


def used_marker(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + ".used")


def check_plan(data: LoadData, data_path: Path, scenario: Scenario, workers: int) -> int:
    """Refuse a plan the data cannot carry to its end, before anything starts."""
    marker = used_marker(data_path)
    if marker.exists():
        raise ScenarioError(
            f"{data_path}: run {marker.read_text().strip()} already claimed its codes; "
            "make new data with `loadtest prepare`"
        )
    needed = scenario.codes_needed(workers)
    if needed > len(data.codes):
        load = scenario.load
        raise ScenarioError(
            f"{data_path}: the plan needs {needed:,} fresh codes "
            f"({load.shape}, {load.planned_duration:g} s, "
            f"{scenario.codes_per_request():.2f} codes per request, {workers} workers, with "
            f"headroom); the file has {len(data.codes):,}: run `loadtest prepare` with "
            f"--codes {needed}, or with this --scenario and --workers"
        )
    return needed


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _locust(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args]


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def run(data_path: Path, scenario: Scenario, options: Options) -> dict[str, Any]:
    """Run the plan; return the summary (also written, with the report, to the run's
    directory and appended to the history). Raise RunFailed if the run could not happen."""
    data = read(data_path)
    workers = options.workers + options.remote_workers
    check_plan(data, data_path, scenario, workers)
    run_id = new_run_id()
    out = options.out or options.history.parent / run_id
    out.mkdir(parents=True, exist_ok=True)
    port = options.master_port or _free_port(options.master_bind)
    env = {**os.environ, **options.extra_env, "LOADTEST_DATA": str(data_path.resolve())}
    master_cmd = _locust(
        "--master", "--headless", "--host", data.api,
        "--master-bind-host", options.master_bind, "--master-bind-port", str(port),
        "--expect-workers", str(workers), "--expect-workers-max-wait", str(int(START_SECONDS)),
        "--stop-timeout", "5", "--only-summary", "--loglevel", LOG_LEVEL,
        "--lt-scenario", json.dumps(scenario.as_json()), "--lt-run-id", run_id,
        "--lt-workers", str(workers), "--lt-run-dir", str(out.resolve()),
        *(["--lt-forwarded-for"] if options.forwarded_for else []),
    )  # fmt: skip
    worker_cmd = _locust(
        "--worker", "--master-host", _reach(options.master_bind), "--master-port", str(port),
        "--loglevel", LOG_LEVEL,
    )  # fmt: skip
    children: list[subprocess.Popen[bytes]] = []
    schedule: faults_.Schedule | None = None
    try:
        with (out / "locust-master.log").open("wb") as log:
            master = subprocess.Popen(master_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        children.append(master)
        for i in range(options.workers):
            with (out / f"locust-worker-{i}.log").open("wb") as log:
                children.append(
                    subprocess.Popen(worker_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
                )
        t0 = _wait_for_start(out, master)
        used_marker(data_path).write_text(run_id + "\n")  # its codes are being claimed
        api_port = urlsplit(data.api).port or 80
        schedule = faults_.Schedule(list(options.faults), t0, api_port)
        schedule.start()
        try:
            master.wait(scenario.load.planned_duration + START_SECONDS + END_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise RunFailed(f"the run did not end: see {out / 'locust-master.log'}") from exc
    except OSError as exc:
        raise RunFailed(f"cannot start locust: {exc.strerror}") from exc
    finally:
        if schedule is not None:
            schedule.stop()
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
    raw_path = out / "raw.json"
    if not raw_path.exists():
        raise RunFailed(f"locust's master left no record: see {out / 'locust-master.log'}")
    raw = json.loads(raw_path.read_text())
    from loadtest import invariants  # httpx only: imported when the run is over

    checked = invariants.check(data.api, data.station_key, f"lt-{run_id}-", raw["passed"])
    result = summary.build(
        raw, scenario, run_id=run_id, api=data.api, workers=workers,
        prepared=len(data.codes),
        faults=[o.as_json() for o in (schedule.outcomes if schedule else [])],
        invariants=[{"name": i.name, "ok": i.ok, "detail": i.detail} for i in checked],
    )  # fmt: skip
    (out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    raw_path.unlink()  # its figures are in the summary; its list of codes is not needed
    report.write(result, out)
    history.append(result, options.history)
    return result


def _reach(bind: str) -> str:
    return "127.0.0.1" if bind in {"0.0.0.0", "", "*"} else bind  # noqa: S104


def _wait_for_start(out: Path, master: subprocess.Popen[bytes]) -> float:
    started = out / "started"
    deadline = time.monotonic() + START_SECONDS + 10
    while not started.exists():
        if (out / "failed").exists():
            raise RunFailed(f"the run could not start: {(out / 'failed').read_text().strip()}")
        if master.poll() is not None:
            log = (out / "locust-master.log").read_text(errors="replace").strip()
            last = log.splitlines()[-1] if log else "no output"
            raise RunFailed(f"locust's master ended before the run started: {last}")
        if time.monotonic() > deadline:
            raise RunFailed(f"the workers did not join in {START_SECONDS:.0f} s")
        time.sleep(0.05)
    return float(started.read_text())


def worker(data_path: Path, master_host: str, master_port: int) -> int:
    """``loadtest worker``: one more worker for a run whose master runs elsewhere."""
    read(data_path)  # a bad file is named here, not in a traceback from inside locust
    env = {**os.environ, "LOADTEST_DATA": str(data_path.resolve())}
    cmd = _locust("--worker", "--master-host", master_host, "--master-port", str(master_port))
    try:
        return subprocess.run(cmd, env=env, check=False).returncode  # noqa: S603
    except OSError as exc:
        raise RunFailed(f"cannot start locust: {exc.strerror}") from exc
