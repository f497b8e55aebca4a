"""Run summaries as ``loadtest run`` writes them, built in memory for the report's tests.

``realistic`` is a 60 s ramp with two workers, nine request types, a killed API process and
its outage; ``minimal`` is the smallest summary a run can write (one type, no ramp, no
faults). Both are deterministic: the same call gives the same dict.
"""

from __future__ import annotations

import math
import random
from typing import Any

# Rate per second at full load and median latency (ms) of each request type.
TYPES: dict[str, tuple[int, float]] = {
    "claim": (600, 3.0),
    "tote": (40, 18.0),
    "retry": (30, 3.2),
    "forged": (20, 1.5),
    "malformed": (10, 0.8),
    "check": (150, 4.0),
    "page": (60, 9.0),
    "photo": (5, 140.0),
    "brand": (15, 6.0),
}
STEPS = (200, 400, 600, 800, 1000, 1200)
STEP_S = 10
OUTAGE = (31.0, 33.5)


def realistic() -> dict[str, Any]:
    rng = random.Random(15)
    duration = STEP_S * len(STEPS)
    timeline: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Any]] = {}
    for kind, (rate, p50) in TYPES.items():
        count_sum = failures_sum = 0
        p99s: list[float] = []
        for t in range(duration):
            load = STEPS[t // STEP_S] / STEPS[-1]
            saturated = max(0.0, load - 0.7) * 10  # the service saturates past 800/s
            count = max(1, round(rate * load * (1 - 0.1 * saturated) * rng.uniform(0.93, 1.07)))
            slow = 1 + saturated**2 * 3
            failures: dict[str, int] = {}
            if OUTAGE[0] <= t < OUTAGE[1] and kind in ("claim", "tote", "retry"):
                failures["HTTP 503"] = count // 2
            if kind == "check" and saturated > 0:
                failures["HTTP 429"] = round(count * 0.05 * saturated)
            row: dict[str, Any] = {
                "t": t,
                "type": kind,
                "count": count,
                "p50": round(p50 * slow * rng.uniform(0.9, 1.1), 2),
                "p95": round(p50 * 2.5 * slow * rng.uniform(0.9, 1.1), 2),
                "p99": round(p50 * 4 * slow * rng.uniform(0.85, 1.2), 2),
                "failures": failures,
            }
            timeline.append(row)
            count_sum += count
            failures_sum += sum(failures.values())
            p99s.append(row["p99"])
        p99s.sort()
        totals[kind] = {
            "count": count_sum,
            "rate": round(count_sum / duration, 1),
            "p50": p50,
            "p95": round(p50 * 2.6, 1),
            "p99": p99s[int(len(p99s) * 0.99) - 1],
            "max": p99s[-1] * 1.5,
            "failures": failures_sum,
        }
    steps = []
    for i, target in enumerate(STEPS):
        saturated = max(0.0, target / STEPS[-1] - 0.7) * 10
        p99 = round(12.0 * (1 + saturated**2 * 3), 1)
        ok = p99 <= 50
        steps.append(
            {
                "target_rate": target,
                "start": float(i * STEP_S),
                "end": float((i + 1) * STEP_S),
                "achieved_rate": round(target * (1 - 0.1 * saturated) - 1.5, 1),
                "p99": {"claim": p99, "tote": round(p99 * 5, 1)},
                "ok": ok,
                "broken": [] if ok else [f"claim p99 {p99} ms > 50 ms"],
            }
        )
    cpu = [
        {"t": t, "worker": worker, "cpu": round(min(99.0, base + t * 1.1 + math.sin(t) * 4), 1)}
        for worker, base in (("w1", 20), ("w2", 28))
        for t in range(duration)
    ]
    return {
        "version": 1,
        "run_id": "20261204T031500-ab12",
        "started_at": "2026-12-04T03:15:00Z",
        "ended_at": "2026-12-04T03:16:00Z",
        "api": "http://127.0.0.1:8000",
        "shape": "ramp",
        "workers": 2,
        "duration_s": float(duration),
        "scenario": {"shape": "ramp", "mix": {kind: rate for kind, (rate, _) in TYPES.items()}},
        "codes": {"prepared": 100_000, "used": 37_412},
        "verdict": "fail",
        "reasons": ["claim p99 61.2 ms > 50 ms at 1000/s", "3 fresh claims failed"],
        "totals": totals,
        "timeline": timeline,
        "generator_cpu": cpu,
        "faults": [
            {
                "at": 30.0,
                "action": "kill-api",
                "done_at": 30.2,
                "ok": True,
                "detail": "killed pid 1234",
            }
        ],
        "outage": {"start": OUTAGE[0], "end": OUTAGE[1], "failed_claims": 53},
        "steps": steps,
        "saturation": {"target_rate": 800, "achieved_rate": 790.2},
        "slos": [
            {"name": "claim p99 <= 50 ms", "limit": 50.0, "measured": 61.2, "ok": False},
            {"name": "no 5xx", "limit": 0.0, "measured": 0.0, "ok": True},
            {"name": "no failed fresh claim", "limit": 0.0, "measured": 3.0, "ok": False},
        ],
        "invariants": [
            {"name": "every passed code is shipped once", "ok": True, "detail": "36,981 codes"},
            {"name": "no unit passed twice", "ok": True, "detail": "0 duplicates"},
            {"name": "retries got their first answer", "ok": True, "detail": "1,800 retries"},
        ],
    }


def minimal() -> dict[str, Any]:
    """One request type for three seconds, no ramp, no faults, no generator CPU."""
    return {
        "version": 1,
        "run_id": "20261204T040000-cd34",
        "started_at": "2026-12-04T04:00:00Z",
        "ended_at": "2026-12-04T04:00:03Z",
        "api": "http://127.0.0.1:8000",
        "shape": "steady",
        "workers": 1,
        "duration_s": 3.0,
        "scenario": {},
        "codes": {"prepared": 1000, "used": 90},
        "verdict": "pass",
        "reasons": [],
        "totals": {
            "claim": {
                "count": 90,
                "rate": 30.0,
                "p50": 3.1,
                "p95": 8.0,
                "p99": 12.0,
                "max": 40.0,
                "failures": 0,
            }
        },
        "timeline": [
            {"t": t, "type": "claim", "count": 30, "p50": 3.0, "p95": 7.0, "p99": 11.0}
            for t in range(3)
        ],
        "generator_cpu": [],
        "faults": [],
        "outage": None,
        "steps": [],
        "saturation": None,
        "slos": [],
        "invariants": [],
    }
