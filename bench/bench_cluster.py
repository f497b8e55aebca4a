"""Claim throughput of the cluster against one `serve`, same load, same run.

Starts `make cluster`'s topology (deploy/cluster/cluster.py: etcd x3, Patroni with three
synchronous PostgreSQL 15 nodes, HAProxy, two `serve`), finds its saturation point with the
load harness (`loadtest`, the claims ramp: single station claims stepping up until claim
p99 passes its SLO), stops it; then the same ramp against one `transparency serve` on the
embedded PostgreSQL. The ceiling is the single machine: the cluster pays a synchronous
commit on a second node per claim and runs seven more processes on the same cores.

    .venv/bin/python bench/bench_cluster.py                 # about 6 minutes
    .venv/bin/python bench/bench_cluster.py --step-seconds 5 --max-rate 1200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import Service

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "deploy" / "cluster" / "cluster.py"


def plan(step_seconds: int, max_rate: int, p99_ms: int) -> str:
    return (
        f'[load]\nshape = "ramp"\nstart = 100\nstep = 100\nstep_duration = "{step_seconds}s"\n'
        f"max_rate = {max_rate}\nper_user_rate = 20\n\n[mix]\nclaim = 1\n\n"
        f"[slo]\nclaim_p99_ms = {p99_ms}\nmax_5xx = 0\nmax_failed_fresh_claims = 0\n"
    )


def run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """One of our own commands (this Python, our scripts), its output kept."""
    return subprocess.run(  # noqa: S603 - our own interpreter and scripts
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False
    )


def loadtest(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "loadtest", *args)


def saturation(api: str, admin: str, at: Path, scenario: str) -> dict[str, Any]:
    """The ramp's highest step that met every SLO, as the harness reports it."""
    at.mkdir(parents=True)
    (at / "plan.toml").write_text(scenario)
    done = loadtest("prepare", "--api", api, "--admin-key", admin,
                    "--scenario", at / "plan.toml", "--out", at / "data.json")  # fmt: skip
    if done.returncode:
        raise SystemExit(f"loadtest prepare failed:\n{done.stdout}{done.stderr}")
    loadtest("run", "--data", at / "data.json", "--scenario", at / "plan.toml",
             "--out", at / "run", "--history", at / "history.jsonl")  # fmt: skip
    summary: dict[str, Any] = json.loads((at / "run" / "summary.json").read_text())
    return summary


def figures(summary: dict[str, Any]) -> tuple[float, float | None, bool, bool]:
    """(claims/s at the saturation step, its claim p99 ms, the run valid, invariants held)."""
    found = summary.get("saturation") or {}
    rate = float(found.get("achieved_rate") or 0)
    p99 = next((s["measured"] for s in summary["slos"] if s["name"].startswith("claim p99")), None)
    held = all(i["ok"] for i in summary["invariants"])
    return rate, p99, summary["verdict"] != "invalid", held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step-seconds", type=int, default=8)
    parser.add_argument("--max-rate", type=int, default=2000)
    parser.add_argument("--p99-ms", type=int, default=50)
    parser.add_argument("--base-port", type=int, default=7600)
    args = parser.parse_args()
    scenario = plan(args.step_seconds, args.max_rate, args.p99_ms)
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir="/var/tmp"))
    work.chmod(0o755)  # the cluster's nodes run as postgres and read their files here
    results: dict[str, dict[str, Any]] = {}

    home = work / "cluster"
    cluster = (sys.executable, CLUSTER, "--dir", home, "--base-port", str(args.base_port))
    started = run(*cluster, "start")
    if started.returncode:
        raise SystemExit(f"cluster did not start:\n{started.stdout}{started.stderr}")
    try:
        values = dict(line.split("=", 1) for line in run(*cluster, "env").stdout.split())
        on = work / "on-cluster"
        results["cluster"] = saturation(values["API"], values["ADMIN"], on, scenario)
    finally:
        print(run(*cluster, "stop").stdout.strip())

    service = Service(work / "single")
    try:
        results["single"] = saturation(service.url, service.admin, work / "on-single", scenario)
    finally:
        service.stop()

    print(f"\nclaims ramp (SLO claim p99 <= {args.p99_ms} ms), same run; reports in {work}")
    print(
        f"{'deployment':<12} {'claims/s at saturation':>24} {'claim p99 ms':>13}"
        f" {'valid':>6} {'invariants':>11}"
    )
    rates = {}
    for name, summary in results.items():
        rate, p99, valid, held = figures(summary)
        rates[name] = rate
        shown = f"{p99:.1f}" if isinstance(p99, int | float) else "-"
        print(
            f"{name:<12} {rate:>24.0f} {shown:>13} {'yes' if valid else 'NO':>6}"
            f" {'held' if held else 'BROKEN':>11}"
        )
    if rates.get("single"):
        print(f"cluster / single serve: {rates['cluster'] / rates['single']:.2f}x")


if __name__ == "__main__":
    main()
