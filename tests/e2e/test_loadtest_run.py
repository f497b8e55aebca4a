"""The operator's load harness against a real ``transparency serve``: ``loadtest prepare``
and ``loadtest run`` as commands, locust's master with two workers, the invariants read
back through the API, the report, the verdict, and an API process killed mid-run."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.scenario import KINDS
from tests.support.database import pg_home
from tests.support.loadtest import loadtest, prepare, run
from tests.support.served import Served, free_port
from transparency.domain.api_keys import new_api_key

# Low enough that two workers on a busy two-core CI machine stay far below the CPU at which
# a run is declared invalid (the generator, not the service, the limit).
PLAN = """
[load]
rate = 30
duration = "{duration}"
[mix]
claim = 10
tote = 1
retry = 2
forged = 1
malformed = 1
customer_json = 2
customer_page = 1
photo = 1
brand_read = 1
tote_size = 10
[slo]
{slo}
"""
GOOD_SLO = "max_failed_fresh_claims = 0\nmax_error_rate = 0.05\nclaim_p99_ms = 2000"


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[Served, str]]:
    home = pg_home()  # one service for this module's runs: each prepares data of its own
    admin = str(new_api_key())
    # The load machine is trusted as a proxy: a run with --forwarded-for names its clients.
    served = Served(home / "data", free_port(), TRANSPARENCY_ADMIN_KEY=admin,
                    TRANSPARENCY_WORKERS="2", TRANSPARENCY_LOG_LEVEL="ERROR",
                    TRANSPARENCY_TRUSTED_PROXIES="127.0.0.1")  # fmt: skip
    try:
        served.wait_ready()
        yield served, admin
    finally:
        code, _, err = served.stop()
        shutil.rmtree(home, ignore_errors=True)
        assert code == 0, err


def prepared(service: tuple[Served, str], at: Path, duration: str, slo: str) -> Path:
    served, admin = service
    done = prepare(served.url, admin, at, PLAN.format(duration=duration, slo=slo))
    assert "fresh codes" in done.stdout
    return at


def test_a_run_passes_proves_its_invariants_and_writes_its_report(
    service: tuple[Served, str], tmp_path: Path
) -> None:
    at = prepared(service, tmp_path / "good", "10s", GOOD_SLO)
    done, summary = run(at)

    assert done.returncode == 0, done.stdout + done.stderr
    assert summary["verdict"] == "pass", summary["reasons"]
    assert done.stdout.startswith(f"PASS: run {summary['run_id']}")
    assert summary["workers"] == 2
    assert set(summary["totals"]) == set(KINDS)  # every kind was sent
    claimed = summary["totals"]["claim"]["count"]
    assert claimed > 100
    # Every code the harness saw pass, and only those, is shipped once under the run's
    # shipments: read back through the API.
    assert [i["ok"] for i in summary["invariants"]] == [True] * 4
    assert summary["codes"]["used"] > claimed
    assert summary["retries"]["pairs"] > 0
    assert "differed" not in summary["retries"]
    assert {r["worker"] for r in summary["generator_cpu"]} == {"w0", "w1"}
    report = (at / "run" / "report.html").read_text()
    assert "PASS" in report
    assert report.count("<svg") >= 4
    assert not re.search(r"""(src|href)=["']https?:""", report)  # nothing fetched to open it
    # Customers all came from one address (no --forwarded-for): over 20 checks at once and
    # 60 a minute, the service refused them, which the harness names as the cause.
    [line] = [line for line in done.stdout.splitlines() if "customer requests got 429" in line]
    assert "TRANSPARENCY_TRUSTED_PROXIES" in line
    assert summary["verdict"] == "pass"  # a 429 is the service working, not a failure
    history = (at / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in history] == [summary["run_id"]]

    again = loadtest("run", "--data", at / "data.json", "--scenario", at / "plan.toml")
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1
    assert f"run {summary['run_id']} already claimed its codes" in again.stderr

    compared = loadtest("compare", "-1", at / "run" / "summary.json", "--history",
                        at / "history.jsonl")  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    assert "claim" in compared.stdout


def test_a_broken_slo_fails_the_run_and_says_which(
    service: tuple[Served, str], tmp_path: Path
) -> None:
    # A p99 of 0 ms: no claim over HTTP and PostgreSQL is that quick, so the SLO breaks.
    at = prepared(service, tmp_path / "strict", "4s", "claim_p99_ms = 0")
    done, summary = run(at)

    assert done.returncode == 1
    assert summary["verdict"] == "fail"
    assert done.stdout.startswith("FAIL: ")
    assert "SLO broken: claim p99 <= 0 ms" in done.stdout
    assert [i["ok"] for i in summary["invariants"]] == [True] * 4


def test_an_api_process_killed_mid_run_loses_no_acknowledged_pass(
    service: tuple[Served, str], tmp_path: Path
) -> None:
    slo = "max_failed_fresh_claims = 0"  # failed claims that are not "no answer"
    at = prepared(service, tmp_path / "fault", "8s", slo)
    done, summary = run(at, "--fault", "3s:kill-api", "--forwarded-for")

    [fault] = summary["faults"]
    assert fault["ok"], fault
    assert fault["action"] == "kill-api"
    assert "killed pid" in fault["detail"]
    # Whatever the fault cost (claims in flight on the killed process get no answer, and
    # are sent again with their Idempotency-Key), every acknowledged pass is shipped, no
    # unit twice, and the counts agree.
    assert [i["ok"] for i in summary["invariants"]] == [True] * 4, summary["invariants"]
    assert summary["retries"].get("left unanswered", 0) == 0
    assert "differed" not in summary["retries"]
    assert summary["verdict"] == "pass", summary["reasons"]
    assert done.returncode == 0
    # Each customer request named a client of its own: none was over its client's rate.
    customers = [summary["totals"][k] for k in ("customer_json", "customer_page", "photo")]
    assert sum(t["count"] for t in customers) > 20
    assert not any("HTTP 429 rate limited" in t["failures_by_reason"] for t in customers)
