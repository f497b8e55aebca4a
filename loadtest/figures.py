"""What a run measured, second by second, and what the scenario's objectives say about it.

Workers count each request in a ``Bucket`` per wall-clock second and request kind: a count,
a latency histogram and failures by reason. Buckets merge by addition, so the master (and a
summary written after the run) gets the same figures whatever the number of workers, and a
percentile is taken over every request of a window, never averaged across workers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loadtest.scenario import COUNT_SLOS, Scenario


def rounded(ms: float) -> int:
    """Latency as the histogram keeps it: 2 significant digits past 100 ms (as locust does),
    so a histogram holds a few hundred keys whatever the number of requests."""
    if ms < 100:
        return round(ms)
    digits = len(str(int(ms))) - 2
    return int(round(ms, -digits))


@dataclass
class Bucket:
    count: int = 0
    latency: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, ms: float, failure: str | None) -> None:
        self.count += 1
        self.latency[rounded(ms)] += 1
        if failure is not None:
            self.failures[failure] += 1

    def merge(self, other: Bucket) -> None:
        self.count += other.count
        self.latency.update(other.latency)
        self.failures.update(other.failures)

    def as_json(self) -> dict[str, Any]:
        return {"n": self.count, "h": {str(k): v for k, v in self.latency.items()},
                "f": dict(self.failures)}  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Bucket:
        return cls(
            count=int(raw["n"]),
            latency=Counter({int(k): int(v) for k, v in raw["h"].items()}),
            failures=Counter({str(k): int(v) for k, v in raw["f"].items()}),
        )

    def percentile(self, share: float) -> float | None:
        total = sum(self.latency.values())
        if not total:
            return None
        rank = share * total
        seen = 0
        for ms in sorted(self.latency):
            seen += self.latency[ms]
            if seen >= rank:
                return float(ms)
        return float(max(self.latency))


# Second (Unix time, whole) -> request kind -> bucket.
Timeline = dict[int, dict[str, Bucket]]


def merge_into(timeline: Timeline, raw: Mapping[str, Mapping[str, Any]]) -> None:
    """Add a worker's report (``timeline_json``'s shape) into ``timeline``."""
    for second, kinds in raw.items():
        row = timeline.setdefault(int(second), {})
        for kind, bucket in kinds.items():
            row.setdefault(kind, Bucket()).merge(Bucket.from_json(bucket))


def timeline_json(timeline: Timeline) -> dict[str, dict[str, Any]]:
    return {
        str(second): {kind: b.as_json() for kind, b in kinds.items()}
        for second, kinds in timeline.items()
    }


def window(timeline: Timeline, start: float, end: float) -> dict[str, Bucket]:
    """Every kind's requests answered in [start, end) merged into one bucket each: the
    seconds wholly inside it (a second that began before ``end`` and ended after it held a
    ramp's next step's first clients, and their burst was counted against the step)."""
    merged: dict[str, Bucket] = {}
    for second, kinds in timeline.items():
        if start <= second and second + 1 <= end:
            for kind, bucket in kinds.items():
                merged.setdefault(kind, Bucket()).merge(bucket)
    return merged


def whole_seconds(start: float, end: float) -> int:
    """How many seconds ``window`` takes from [start, end) (at least one)."""
    return max(1, math.floor(end) - math.ceil(start))


def is_5xx(reason: str) -> bool:
    return reason.startswith("HTTP 5") or reason == "no answer"


FRESH_CLAIM_FAILURE = "fresh code did not pass"
RATE_LIMITED = "HTTP 429 rate limited"


@dataclass(frozen=True, slots=True)
class Objective:
    name: str
    limit: float
    measured: float | None
    ok: bool

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "measured": self.measured, "ok": self.ok}


def objectives(scenario: Scenario, kinds: Mapping[str, Bucket]) -> list[Objective]:
    """Each SLO of the scenario, checked over ``kinds`` (a run or one ramp step)."""
    results: list[Objective] = []
    failures: Counter[str] = Counter()
    for bucket in kinds.values():
        failures.update(bucket.failures)
    requests = sum(b.count for b in kinds.values())
    for key, limit in scenario.slo.items():
        if key in COUNT_SLOS:
            if key == "max_5xx":
                measured = float(sum(n for r, n in failures.items() if is_5xx(r)))
                name = f"5xx or unanswered <= {limit:g}"
            else:
                measured = float(
                    sum(n for r, n in failures.items() if r.startswith(FRESH_CLAIM_FAILURE))
                )
                name = f"failed fresh claims <= {limit:g}"
            results.append(Objective(name, limit, measured, measured <= limit))
        elif key == "max_error_rate":
            refused = failures[RATE_LIMITED]  # the service protecting itself, not failing
            rate = (sum(failures.values()) - refused) / requests if requests else 0.0
            results.append(Objective(f"error rate <= {limit:g}", limit, rate, rate <= limit))
        else:
            kind, percentile, _ = key.rsplit("_", 2)
            sent = kinds.get(kind)
            value = sent.percentile(int(percentile[1:]) / 100) if sent else None
            # A kind that sent nothing has not met its objective: it was not measured.
            ok = value is not None and value <= limit
            results.append(Objective(f"{kind} {percentile} <= {limit:g} ms", limit, value, ok))
    return results


def totals(kinds: Mapping[str, Bucket], seconds: float) -> dict[str, dict[str, Any]]:
    """Per kind: count, rate, p50/p95/p99/max and failures over ``seconds``."""
    out: dict[str, dict[str, Any]] = {}
    for kind, b in sorted(kinds.items()):
        out[kind] = {
            "count": b.count,
            "rate": round(b.count / seconds, 1) if seconds > 0 else 0.0,
            "p50": b.percentile(0.50), "p95": b.percentile(0.95), "p99": b.percentile(0.99),
            "max": float(max(b.latency)) if b.latency else None,
            "failures": sum(b.failures.values()),
            "failures_by_reason": dict(b.failures.most_common()),
        }  # fmt: skip
    return out


def rows(timeline: Timeline, t0: float) -> list[dict[str, Any]]:
    """The timeline as the summary's rows: one per second and kind, seconds since t0."""
    out = []
    for second in sorted(timeline):
        for kind, b in sorted(timeline[second].items()):
            out.append({
                "t": round(second - t0, 3), "type": kind, "count": b.count,
                "p50": b.percentile(0.50), "p95": b.percentile(0.95), "p99": b.percentile(0.99),
                "failures": dict(b.failures),
            })  # fmt: skip
    return out


def outage(
    timeline: Timeline, t0: float, kinds: Iterable[str] = ("claim", "tote", "retry")
) -> dict[str, Any] | None:
    """The seconds during which claims failed for want of an answer (5xx, no answer)."""
    wanted = set(kinds)
    failed: Counter[int] = Counter()
    for second, row in timeline.items():
        for kind, b in row.items():
            if kind in wanted:
                failed[second] += sum(n for r, n in b.failures.items() if is_5xx(r))
    seconds = sorted(s for s, n in failed.items() if n)
    if not seconds:
        return None
    return {
        "start": round(seconds[0] - t0, 3),
        "end": round(seconds[-1] + 1 - t0, 3),
        "seconds_with_failures": len(seconds),
        "failed_claims": sum(failed.values()),
    }
