"""A run's summary: what the master recorded, turned into the figures, SLOs and verdict
that the report, the history file and ``loadtest compare`` read (summary.json)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from loadtest import figures
from loadtest.scenario import Scenario

CPU_LIMIT = 90.0  # percent of one core
CPU_SECONDS = 3  # this many seconds in a row above it and the generator was the limit


def _when(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def starved(cpu: Sequence[dict[str, Any]]) -> list[str]:
    """Workers that used more than CPU_LIMIT of a core CPU_SECONDS seconds in a row."""
    reasons = []
    by_worker = itertools.groupby(sorted(cpu, key=lambda r: (r["worker"], r["t"])),
                                  key=lambda r: r["worker"])  # fmt: skip
    for worker, samples in by_worker:
        run: list[float] = []
        for sample in samples:
            run = [*run, sample["t"]] if sample["cpu"] > CPU_LIMIT else []
            if len(run) >= CPU_SECONDS:
                reasons.append(
                    f"load generator {worker} used over {CPU_LIMIT:.0f}% of a core from "
                    f"{run[0]:.0f} s: its figures measure the generator, not the service "
                    "(run more --workers, or workers on other machines)"
                )
                break
    return reasons


def retried(retry: dict[str, int]) -> dict[str, Any]:
    """The harness's own invariant: a claim sent again with its Idempotency-Key got its
    first answer, and every claim left unanswered by a fault got one in the end."""
    pairs, differed = retry.get("pairs", 0), retry.get("differed", 0)
    converged, left = retry.get("converged", 0), retry.get("left unanswered", 0)
    return {
        "name": "every retried claim got its first answer",
        "ok": not differed and not left,
        "detail": f"{pairs} claims sent twice with one Idempotency-Key, {differed} answered "
        f"otherwise the second time; {converged} unanswered claims sent again until "
        f"answered, {left} never answered",
    }


def build(
    raw: dict[str, Any],
    scenario: Scenario,
    *,
    run_id: str,
    api: str,
    workers: int,
    prepared: int,
    faults: list[dict[str, Any]],
    invariants: list[dict[str, Any]],
) -> dict[str, Any]:
    t0, ended = float(raw["t0"]), float(raw["ended"])
    timeline: figures.Timeline = {}
    figures.merge_into(timeline, raw["timeline"])
    duration = max(1.0, ended - t0)
    run_kinds = figures.window(timeline, 0, float("inf"))
    steps: list[dict[str, Any]] = raw["steps"]
    cpu = [{"t": round(s - t0, 3), "worker": w, "cpu": pct} for s, w, pct in raw["cpu"]]
    reasons: list[str] = []
    invalid = starved(cpu)
    saturation = None
    if scenario.load.shape == "ramp":
        ok = [s for s in steps if s["ok"]]
        if ok:
            best = max(ok, key=lambda s: s["target_rate"])
            saturation = {
                "target_rate": best["target_rate"],
                "achieved_rate": best["achieved_rate"],
            }
        for step, after in itertools.pairwise(steps):
            if not step["ok"] and after.get("again") and after["ok"]:
                reasons.append(
                    f"the step at {step['target_rate']:g}/s broke ({'; '.join(step['broken'])})"
                    " and met every SLO measured again"
                )
        if steps and not steps[-1]["ok"]:
            last = steps[-1]
            reasons.append(
                f"ramp stopped at {last['target_rate']:g}/s: " + "; ".join(last["broken"])
            )
        if saturation is None:
            reasons.append("no step met every SLO: no saturation point")
        # The objectives as the saturation step met them (the first step, if none did).
        best_rate = saturation["target_rate"] if saturation else None
        shown = next((s for s in steps if s["ok"] and s["target_rate"] == best_rate), None)
        shown = shown or (steps[0] if steps else None)
        kinds = run_kinds
        if shown is not None:
            kinds = figures.window(timeline, t0 + shown["start"] + 1, t0 + shown["end"])
        slos = [o.as_json() for o in figures.objectives(scenario, kinds)]
        slo_broken = saturation is None
    else:
        results = figures.objectives(scenario, run_kinds)
        slos = [o.as_json() for o in results]
        for o in results:
            if not o.ok:
                measured = "nothing measured" if o.measured is None else f"{o.measured:g}"
                reasons.append(f"SLO broken: {o.name} (measured {measured})")
        slo_broken = any(not o.ok for o in results)
    retry = raw.get("retry", {})
    invariants = [*invariants, retried(retry)]
    broken_invariants = [i for i in invariants if not i["ok"]]
    reasons += [f"invariant broken: {i['name']}: {i['detail']}" for i in broken_invariants]
    if invalid:
        verdict = "invalid"
        reasons = invalid + reasons
    elif slo_broken or broken_invariants:
        verdict = "fail"
    else:
        verdict = "pass"
    used = len(raw["passed"])
    return {
        "version": 1,
        "run_id": run_id,
        "started_at": _when(t0),
        "ended_at": _when(ended),
        "api": api,
        "shape": scenario.load.shape,
        "workers": workers,
        "duration_s": round(duration, 3),
        "scenario": scenario.as_json(),
        "codes": {"prepared": prepared, "used": used},
        "verdict": verdict,
        "reasons": reasons,
        "totals": figures.totals(run_kinds, duration),
        "timeline": figures.rows(timeline, t0),
        "generator_cpu": cpu,
        "faults": faults,
        "outage": figures.outage(timeline, t0),
        "retries": retry,
        "steps": steps,
        "saturation": saturation,
        "slos": slos,
        "invariants": invariants,
    }


def rate_limited(summary: dict[str, Any]) -> str | None:
    """One line naming the service's rate limits as the cause of a run's 429 and 503s."""
    limited = busy = 0
    for kind in summary["totals"].values():
        limited += kind["failures_by_reason"].get(figures.RATE_LIMITED, 0)
        busy += kind["failures_by_reason"].get("HTTP 503 customer-checks-busy", 0)
    if not limited and not busy:
        return None
    parts = []
    if limited:
        parts.append(
            f"{limited} customer requests got 429: the service limits each client address, and "
            "this run's customers all came from one; start the API with "
            "TRANSPARENCY_TRUSTED_PROXIES=<this machine's address> and run with "
            "--forwarded-for, or raise TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE"
        )
    if busy:
        parts.append(
            f"{busy} customer requests got 503 customer-checks-busy: the service's budget of "
            "customer checks per process is spent; raise TRANSPARENCY_CUSTOMER_CHECKS_PER_SECOND"
        )
    return "; ".join(parts)
