"""A scenario: what traffic a run sends, how its rate moves over time, and what it must meet.

A TOML file (the README shows one); every field has a default, so ``loadtest run`` without
``--scenario`` is a 30 s steady run of the default mix::

    [load]
    shape = "ramp"          # steady | ramp | spike | soak
    rate = 200              # requests per second (steady, soak; spike's base)
    duration = "30s"        # steady, spike, soak
    start = 100             # ramp: the first step's rate,
    step = 100              #   added at each step,
    step_duration = "10s"   #   held this long,
    max_rate = 3000         #   up to this rate
    peak = 1000             # spike: the rate of the spike, which starts at
    spike_at = "10s"        #   this time and lasts
    spike_length = "5s"
    per_user_rate = 10      # each simulated client's requests per second

    [mix]                   # relative weights of the request kinds
    claim = 10              # a station's single claim of a fresh code
    tote = 1                # a tote of `tote_size` fresh codes in one batch claim
    retry = 1               # a claim sent twice with one Idempotency-Key
    forged = 1              # a code with a wrong tag
    malformed = 1           # a scan that is no code at all
    customer_json = 5       # GET /v1/verify
    customer_page = 1       # the customer page a phone opens
    photo = 0               # a phone photo of a label, POSTed to /v1/scans
    brand_read = 1          # a brand's product list
    tote_size = 20

    [slo]                   # the verdict: each is checked over the whole run (a ramp: each step)
    claim_p99_ms = 50       # <kind>_p50_ms, _p95_ms, _p99_ms for any kind above
    max_5xx = 0
    max_failed_fresh_claims = 0
    max_error_rate = 0.01   # failed requests over all requests (429s are not failures)

Without [slo], the objectives are ``DEFAULT_SLO``'s. A ramp's rate rises a step at a time
until a step breaks an SLO or reaches less than ``MIN_ACHIEVED`` of its target rate: the
last step that met every SLO is the saturation point.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtest.errors import ScenarioError

KINDS = (
    "claim", "tote", "retry", "forged", "malformed",
    "customer_json", "customer_page", "photo", "brand_read",
)  # fmt: skip
SHAPES = ("steady", "ramp", "spike", "soak")
# Fresh codes one request of each kind uses (a tote: tote_size; the rest: none).
CLAIMING = {"claim": 1, "retry": 1}
DEFAULT_MIX: dict[str, float] = {
    "claim": 10, "tote": 1, "retry": 1, "forged": 1, "malformed": 1,
    "customer_json": 5, "customer_page": 1, "photo": 0, "brand_read": 1,
}  # fmt: skip
PERCENTILES = ("p50", "p95", "p99")
# A scenario without [slo]: nothing lost or refused that should pass, claims quick. 429s
# are not errors: the service refusing a client over its rate is the service working.
DEFAULT_SLO: dict[str, float] = {
    "claim_p99_ms": 50, "max_5xx": 0, "max_failed_fresh_claims": 0, "max_error_rate": 0.01,
}  # fmt: skip
COUNT_SLOS = ("max_5xx", "max_failed_fresh_claims")
# A ramp step that reaches less than this share of its target rate has saturated the
# service (or the generator): requests queue instead of completing at the rate asked.
MIN_ACHIEVED = 0.9
# Codes prepared beyond the plan: a run's clients start and stop a little off the plan.
HEADROOM = 1.1
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def seconds(value: object, name: str) -> float:
    """``30``, ``"30s"``, ``"2m"``, ``"1h"`` as seconds."""
    if isinstance(value, bool):
        raise ScenarioError(f"{name}: expected a duration such as 30s or 2m, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ScenarioError(f"{name}: expected a duration such as 30s or 2m, got {value!r}")
        number = float(match[1]) * _UNITS[match[2]]
    if number <= 0:
        raise ScenarioError(f"{name}: must be more than 0")
    return number


@dataclass(frozen=True, slots=True)
class Step:
    """A stretch of the run at one rate: [start, end) seconds since the run started."""

    start: float
    end: float
    rate: float


# Broken ramp steps measured again, at most, in one run (RampPlan).
RAMP_REPEATS = 2
# Seconds a ramp step runs on past its end, at its rate, while it is judged: its last
# reports come in (2 s), then the plan's next tick (a second apart) judges it.
RAMP_LAG = 2.0
RAMP_HOLD = RAMP_LAG + 1.0


@dataclass(frozen=True, slots=True)
class Load:
    shape: str = "steady"
    rate: float = 100.0
    duration: float = 30.0
    start: float = 100.0
    step: float = 100.0
    step_duration: float = 10.0
    max_rate: float = 3000.0
    peak: float = 1000.0
    spike_at: float = 10.0
    spike_length: float = 5.0
    per_user_rate: float = 10.0

    def steps(self) -> list[Step]:
        """The rate over time; a ramp lists every step it may reach."""
        if self.shape == "ramp":
            count = int((self.max_rate - self.start) // self.step) + 1
            return [
                Step(i * self.step_duration, (i + 1) * self.step_duration,
                     self.start + i * self.step)
                for i in range(count)
            ]  # fmt: skip
        if self.shape == "spike":
            spike_end = min(self.duration, self.spike_at + self.spike_length)
            parts = [
                Step(0.0, self.spike_at, self.rate),
                Step(self.spike_at, spike_end, self.peak),
                Step(spike_end, self.duration, self.rate),
            ]
            return [s for s in parts if s.end > s.start]
        return [Step(0.0, self.duration, self.rate)]

    @property
    def planned_duration(self) -> float:
        """The longest the plan may run: a ramp with every repeat it may make, each step
        held while it is judged."""
        steps = self.steps()
        if self.shape == "ramp":
            return (len(steps) + RAMP_REPEATS) * (self.step_duration + RAMP_HOLD)
        return steps[-1].end

    def users(self, rate: float, workers: int = 1) -> int:
        """Clients for ``rate``: a multiple of ``workers``, so that each worker runs as many
        and claims its own share of the codes as fast as the others."""
        return max(1, math.ceil(rate / self.per_user_rate / workers)) * workers


class RampPlan:
    """A ramp's steps as it runs. A step that breaks an SLO (or falls short of its rate) is
    measured once more at the same rate before the ramp stops, at most ``RAMP_REPEATS``
    times a run: one stall of the machine (a checkpoint, a paused VM) broke a cluster's
    step at 200 claims/s, with a p50 of 7 ms and two seconds past 100 ms, and the ramp
    called 100/s its saturation point (bench_cluster.py; the run before found 492/s). A
    service at its limit breaks the step again."""

    def __init__(self, load: Load) -> None:
        self.steps = load.steps()
        self.repeats: set[int] = set()  # indices of the steps that measure one again

    def go_on(self, index: int, ok: bool, now: float) -> bool:
        """Step ``index`` was judged ``ok`` or not at ``now`` (it ran on at its rate until
        then): whether the ramp goes on. The next step starts at ``now``: a repeat of a
        broken step, or the next rate."""
        later = self.steps[index + 1 :]
        if not ok:
            if index in self.repeats or len(self.repeats) >= RAMP_REPEATS:
                return False
            later = [self.steps[index], *later]  # the same step again, moved to start now
            self.repeats.add(index + 1)
        shift = now - later[0].start if later else 0.0
        self.steps[index + 1 :] = [Step(s.start + shift, s.end + shift, s.rate) for s in later]
        return True


@dataclass(frozen=True, slots=True)
class Scenario:
    load: Load = field(default_factory=Load)
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    tote_size: int = 20
    slo: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SLO))
    raw: Mapping[str, Any] = field(default_factory=dict)

    def codes_per_request(self) -> float:
        """Fresh codes one request uses on average, over the mix."""
        total = sum(self.mix.values())
        used = sum(
            weight * (self.tote_size if kind == "tote" else CLAIMING.get(kind, 0))
            for kind, weight in self.mix.items()
        )
        return used / total

    def codes_needed(self, workers: int = 1) -> int:
        """Fresh codes the whole plan uses, with headroom (a ramp: up to its last step, each
        step held while judged, and its repeats), and a tote more for each worker, which
        holds its own share."""
        load = self.load
        steps = load.steps()
        requests = sum((s.end - s.start) * s.rate for s in steps)
        if load.shape == "ramp":  # each step held, and the repeats at the highest rate
            requests += sum(RAMP_HOLD * s.rate for s in steps)
            requests += RAMP_REPEATS * (load.step_duration + RAMP_HOLD) * steps[-1].rate
        per_worker = self.tote_size + 1
        planned = round(requests * self.codes_per_request() * HEADROOM, 6)  # 1500 * 1.1: 1650
        return math.ceil(planned) + workers * per_worker

    def as_json(self) -> dict[str, Any]:
        load = {name: getattr(self.load, name) for name in Load.__slots__}
        return {"load": load, "mix": {**self.mix, "tote_size": self.tote_size},
                "slo": dict(self.slo)}  # fmt: skip


def _number(table: Mapping[str, Any], key: str, where: str, *, minimum: float = 0) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{where}.{key}: expected a number, got {value!r}")
    if value < minimum:
        raise ScenarioError(f"{where}.{key}: must be at least {minimum:g}")
    return float(value)


def _table(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ScenarioError(f"[{name}]: expected a table")
    return table


def _load(table: dict[str, Any]) -> Load:
    durations = ("duration", "step_duration", "spike_at", "spike_length")
    rates = ("rate", "start", "step", "max_rate", "peak", "per_user_rate")
    unknown = set(table) - {"shape", *durations, *rates}
    if unknown:
        raise ScenarioError(f"[load]: unknown setting {sorted(unknown)[0]!r}")
    shape = table.get("shape", "steady")
    if shape not in SHAPES:
        raise ScenarioError(f"[load].shape: one of {', '.join(SHAPES)}, got {shape!r}")
    values: dict[str, Any] = {"shape": shape}
    for key in durations:
        if key in table:
            values[key] = seconds(table[key], f"[load].{key}")
    for key in rates:
        if key in table:
            values[key] = _number(table, key, "[load]", minimum=0.001)
    load = Load(**values)
    if shape == "ramp" and load.max_rate < load.start:
        raise ScenarioError("[load].max_rate: must be at least [load].start")
    return load


def _mix(table: dict[str, Any]) -> tuple[dict[str, float], int]:
    tote_size = table.pop("tote_size", 20)
    if isinstance(tote_size, bool) or not isinstance(tote_size, int) or not 1 <= tote_size <= 1000:
        raise ScenarioError(f"[mix].tote_size: a whole number from 1 to 1000, got {tote_size!r}")
    unknown = set(table) - set(KINDS)
    if unknown:
        name = sorted(unknown)[0]
        raise ScenarioError(f"[mix]: unknown kind {name!r} (kinds: {', '.join(KINDS)})")
    mix = {kind: _number(table, kind, "[mix]") for kind in table} if table else dict(DEFAULT_MIX)
    if not any(mix.values()):
        raise ScenarioError("[mix]: every weight is 0: nothing to send")
    return mix, tote_size


def _slo(table: dict[str, Any]) -> dict[str, float]:
    for key in table:
        kind, _, limit = key.rpartition("_")
        latency = limit == "ms" and kind.rpartition("_")[::2] in {
            (k, p) for k in KINDS for p in PERCENTILES
        }
        if not (latency or key in COUNT_SLOS or key == "max_error_rate"):
            raise ScenarioError(
                f"[slo]: unknown objective {key!r} (for example claim_p99_ms, max_5xx, "
                "max_failed_fresh_claims, max_error_rate)"
            )
    return {key: _number(table, key, "[slo]") for key in table} if table else dict(DEFAULT_SLO)


def parse(raw: Mapping[str, Any]) -> Scenario:
    unknown = set(raw) - {"load", "mix", "slo"}
    if unknown:
        raise ScenarioError(f"unknown table [{sorted(unknown)[0]}] (tables: load, mix, slo)")
    mix, tote_size = _mix(dict(_table(raw, "mix")))
    return Scenario(
        load=_load(_table(raw, "load")),
        mix=mix,
        tote_size=tote_size,
        slo=_slo(_table(raw, "slo")),
        raw=raw,
    )


def read(path: Path) -> Scenario:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not TOML: {exc}") from exc
    try:
        return parse(raw)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc


def with_plan(
    scenario: Scenario, *, rate: float | None = None, duration: float | None = None
) -> Scenario:
    """The scenario with its rate or duration replaced (``--rate``, ``--duration``)."""
    changes: dict[str, Any] = {}
    if rate is not None:
        if rate <= 0:
            raise ScenarioError("--rate: must be more than 0")
        changes["rate"] = rate
    if duration is not None:
        changes["duration"] = duration
    return replace(scenario, load=replace(scenario.load, **changes)) if changes else scenario


class Dealer:
    """The mix's kinds in their exact proportions, evenly spread (nginx's smooth weighted
    round-robin): a run uses the codes its plan counted, not a random draw's share of them."""

    def __init__(self, mix: Mapping[str, float]) -> None:
        self.weights = {kind: weight for kind, weight in mix.items() if weight > 0}
        self.total = sum(self.weights.values())
        self.current = dict.fromkeys(self.weights, 0.0)

    def deal(self) -> str:
        for kind, weight in self.weights.items():
            self.current[kind] += weight
        chosen = max(self.current, key=self.current.__getitem__)
        self.current[chosen] -= self.total
        return chosen
