"""The load harness's own parts, without a service: the scenario and its plan, the workers'
disjoint codes, the figures and objectives, the verdict, faults, the data file and the
commands' errors. tests/e2e/test_loadtest_run.py runs it against a real service."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest import figures, summary
from loadtest.__main__ import main
from loadtest.data import LoadData, read, share, write
from loadtest.errors import DataError, PrepareError, ScenarioError
from loadtest.faults import Fault
from loadtest.prepare import prepare
from loadtest.run import check_plan, used_marker
from loadtest.scenario import (
    DEFAULT_SLO,
    RAMP_HOLD,
    RAMP_REPEATS,
    Dealer,
    RampPlan,
    Scenario,
    parse,
    seconds,
    with_plan,
)
from loadtest.scenario import read as read_scenario

ADMIN = "admin-key"


def data(codes: int = 10) -> LoadData:
    return LoadData(
        api="http://127.0.0.1:1", station_key="s", brand_key="b", gtin="00000000000000",
        codes=tuple(f"C{i}" for i in range(codes)), shipped=("x",), forged=("f",),
        photos=(b"\xff\xd8jpeg",),
    )  # fmt: skip


# The data file.


def test_the_data_file_round_trips_and_is_private(tmp_path: Path) -> None:
    write(data(), tmp_path / "data.json")
    assert read(tmp_path / "data.json") == data()
    assert (tmp_path / "data.json").stat().st_mode & 0o077 == 0  # it holds keys


@pytest.mark.parametrize("content", [None, "{}", "not json", '{"api": 1}'])
def test_a_bad_data_file_is_a_data_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=r"data\.json"):
        read(path)


# The scenario.


def test_a_scenario_without_a_file_is_a_steady_run_with_the_default_objectives() -> None:
    scenario = Scenario()
    assert scenario.load.shape == "steady"
    assert dict(scenario.slo) == DEFAULT_SLO
    assert parse({}).as_json() == scenario.as_json()


def test_a_scenario_survives_its_trip_to_the_workers() -> None:
    raw = {"load": {"shape": "ramp", "start": 50, "step": 25, "max_rate": 200,
                    "step_duration": "5s"},
           "mix": {"claim": 3, "tote": 1, "tote_size": 7},
           "slo": {"tote_p95_ms": 80, "max_5xx": 0}}  # fmt: skip
    scenario = parse(raw)
    again = parse(json.loads(json.dumps(scenario.as_json())))
    assert again.as_json() == scenario.as_json()
    assert again.tote_size == 7


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"load": {"shape": "wave"}}, "shape: one of steady, ramp, spike, soak"),
        ({"load": {"duration": "ten"}}, "duration: expected a duration"),
        ({"load": {"duration": 0}}, "must be more than 0"),
        ({"load": {"rate": "fast"}}, "rate: expected a number"),
        ({"load": {"speed": 1}}, "unknown setting 'speed'"),
        ({"load": {"shape": "ramp", "start": 500, "max_rate": 100}}, "max_rate: must be at"),
        ({"mix": {"dance": 1}}, "unknown kind 'dance'"),
        ({"mix": {"claim": 0}}, "every weight is 0"),
        ({"mix": {"claim": -1}}, "must be at least 0"),
        ({"mix": {"tote_size": 0}}, "tote_size: a whole number"),
        ({"slo": {"claim_p42_ms": 1}}, "unknown objective 'claim_p42_ms'"),
        ({"slo": {"dance_p99_ms": 1}}, "unknown objective"),
        ({"gadgets": {}}, r"unknown table \[gadgets\]"),
    ],
)
def test_a_bad_scenario_says_what_is_wrong(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse(raw)


def test_a_scenario_file_names_itself_in_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text("[load\n")
    with pytest.raises(ScenarioError, match=r"plan\.toml: not TOML"):
        read_scenario(path)


@pytest.mark.parametrize(
    ("text", "value"), [("30s", 30.0), ("2m", 120.0), ("1.5h", 5400.0), ("250ms", 0.25), (9, 9.0)]
)
def test_durations(text: object, value: float) -> None:
    assert seconds(text, "x") == value


def test_each_shape_plans_its_rate_over_time() -> None:
    def steps(**load: Any) -> list[tuple[float, float, float]]:
        return [(s.start, s.end, s.rate) for s in parse({"load": load}).load.steps()]

    assert steps(rate=50, duration=20) == [(0, 20, 50)]
    assert steps(shape="soak", rate=50, duration="1h") == [(0, 3600, 50)]
    assert steps(shape="spike", rate=10, peak=100, duration=30, spike_at=10, spike_length=5) == [
        (0, 10, 10), (10, 15, 100), (15, 30, 10),
    ]  # fmt: skip
    assert steps(shape="ramp", start=100, step=50, max_rate=200, step_duration=10) == [
        (0, 10, 100), (10, 20, 150), (20, 30, 200),
    ]  # fmt: skip


def test_a_broken_ramp_step_is_measured_again_before_the_ramp_stops() -> None:
    load = parse({"load": {"shape": "ramp", "start": 100, "step": 100, "max_rate": 400,
                           "step_duration": 10}}).load  # fmt: skip
    ramp = RampPlan(load)
    assert ramp.go_on(0, ok=True, now=12)  # judged 2 s after its end: the next starts then
    assert [(s.start, s.end, s.rate) for s in ramp.steps] == [
        (0, 10, 100), (12, 22, 200), (22, 32, 300), (32, 42, 400),
    ]  # fmt: skip
    assert ramp.go_on(1, ok=False, now=25)  # one stall: 200/s again, then the rest
    assert [(s.start, s.end, s.rate) for s in ramp.steps] == [
        (0, 10, 100), (12, 22, 200), (25, 35, 200), (35, 45, 300), (45, 55, 400),
    ]  # fmt: skip
    assert ramp.repeats == {2}
    assert ramp.go_on(2, ok=True, now=38)
    assert ramp.go_on(3, ok=False, now=51)  # 300/s breaks, and breaks again: the limit
    assert not ramp.go_on(4, ok=False, now=64)
    assert [s.rate for s in ramp.steps] == [100, 200, 200, 300, 300, 400]


def test_a_ramp_repeats_at_most_so_many_steps_a_run() -> None:
    load = parse({"load": {"shape": "ramp", "start": 100, "step": 100, "max_rate": 900,
                           "step_duration": 10}}).load  # fmt: skip
    ramp = RampPlan(load)
    index, now = 0, 0.0
    for _ in range(RAMP_REPEATS):  # each broken step, then its repeat holds
        now += 10 + RAMP_HOLD
        assert ramp.go_on(index, ok=False, now=now)
        now += 10 + RAMP_HOLD
        assert ramp.go_on(index + 1, ok=True, now=now)
        index += 2
    assert not ramp.go_on(index, ok=False, now=now + 10 + RAMP_HOLD)  # no repeat left
    # the longest a ramp runs: every step and every repeat held while judged
    assert load.planned_duration == (9 + RAMP_REPEATS) * (10 + RAMP_HOLD)
    assert ramp.steps[-1].end + RAMP_HOLD <= load.planned_duration


def test_a_ramp_plans_codes_for_its_steps_held_and_its_repeats() -> None:
    ramp = parse({"load": {"shape": "ramp", "start": 100, "step": 100, "max_rate": 200,
                           "step_duration": 10}, "mix": {"claim": 1}})  # fmt: skip
    steps = (100 + 200) * (10 + RAMP_HOLD)  # requests of the planned steps, held
    repeats = RAMP_REPEATS * (10 + RAMP_HOLD) * 200  # so many steps again at the top rate
    assert ramp.codes_needed() == math.ceil(round((steps + repeats) * 1.1, 6)) + 21


def test_a_step_is_judged_on_the_seconds_wholly_inside_it() -> None:
    """A second that began before a step's end and ended after it held the next step's
    first clients: their burst once broke a cluster's step at 200 claims/s (p50 7 ms)."""
    timeline: figures.Timeline = {}
    for second, ms in ((100, 5), (101, 5), (102, 900)):
        timeline.setdefault(second, {}).setdefault("claim", figures.Bucket()).add(ms, None)
    assert figures.window(timeline, 100.0, 102.9)["claim"].percentile(0.99) == 5
    assert (figures.window(timeline, 100.0, 103.0)["claim"].percentile(0.99) or 0) > 5
    assert "claim" not in figures.window(timeline, 100.5, 101.9)
    # a rate is taken over the seconds the window took: 100.2-102.9 took 101 alone
    assert figures.whole_seconds(100.2, 102.9) == 1
    assert figures.whole_seconds(100.0, 103.0) == 3


def test_a_step_that_held_when_measured_again_does_not_stop_the_ramp() -> None:
    step = {"start": 1.0, "end": 3.0, "achieved_rate": 100.0, "p99": {"claim": 5.0},
            "ok": True, "broken": [], "again": False}  # fmt: skip
    stalled = step | {"target_rate": 200.0, "ok": False, "broken": ["claim p99 <= 50 ms"]}
    steps = [step | {"target_rate": 100.0}, stalled, step | {"target_rate": 200.0, "again": True},
             step | {"target_rate": 300.0}]  # fmt: skip
    ramp = Scenario(load=parse({"load": {"shape": "ramp"}}).load)
    result = summary.build(
        raw_run(cpu=20) | {"steps": steps}, ramp, run_id="r", api="http://x", workers=1,
        prepared=10, faults=[], invariants=[],
    )  # fmt: skip
    assert result["verdict"] == "pass"
    assert result["saturation"]["target_rate"] == 300.0
    assert result["reasons"] == [
        "the step at 200/s broke (claim p99 <= 50 ms) and met every SLO measured again"
    ]
    stopped = summary.build(
        raw_run(cpu=20) | {"steps": [*steps, stalled | {"target_rate": 400.0},
                                     stalled | {"target_rate": 400.0, "again": True}]},
        ramp, run_id="r", api="http://x", workers=1, prepared=10, faults=[], invariants=[],
    )  # fmt: skip
    assert stopped["saturation"]["target_rate"] == 300.0
    assert stopped["reasons"][-1] == "ramp stopped at 400/s: claim p99 <= 50 ms"


def test_the_objectives_shown_are_those_of_the_step_that_held() -> None:
    raw = raw_run(cpu=20)
    slow: figures.Timeline = {1005: {"claim": figures.Bucket()}}
    for _ in range(100):
        slow[1005]["claim"].add(900, None)  # a stall in the first run of the 200/s step
    timeline: figures.Timeline = {}
    figures.merge_into(timeline, raw["timeline"])
    figures.merge_into(timeline, figures.timeline_json(slow))
    step = {"achieved_rate": 100.0, "p99": {"claim": 5.0}, "broken": [], "again": False}
    steps = [step | {"target_rate": 100.0, "start": 0.0, "end": 3.0, "ok": True},
             step | {"target_rate": 200.0, "start": 3.0, "end": 7.0, "ok": False},
             step | {"target_rate": 200.0, "start": 7.0, "end": 10.0, "ok": True,
                     "again": True}]  # fmt: skip
    result = summary.build(
        raw | {"timeline": figures.timeline_json(timeline), "steps": steps},
        Scenario(load=parse({"load": {"shape": "ramp"}}).load), run_id="r", api="http://x",
        workers=1, prepared=10, faults=[], invariants=[],
    )  # fmt: skip
    assert result["saturation"]["target_rate"] == 200.0
    p99 = next(o for o in result["slos"] if o["name"] == "claim p99 <= 50 ms")
    assert p99 == {"name": "claim p99 <= 50 ms", "limit": 50.0, "measured": 5.0, "ok": True}


def test_the_codes_a_plan_needs() -> None:
    # 10 claims, 1 tote of 20 and 9 customer checks in 20 requests: 30 codes / 20 requests.
    mix = {"claim": 10, "tote": 1, "customer_json": 9, "tote_size": 20}
    scenario = parse({"load": {"rate": 100, "duration": 10}, "mix": mix})
    assert scenario.codes_per_request() == 1.5
    assert scenario.codes_needed(workers=1) == 1650 + 21
    assert scenario.codes_needed(workers=4) == 1650 + 4 * 21
    assert with_plan(scenario, duration=20).codes_needed() == 3300 + 21


def test_clients_are_a_multiple_of_the_workers() -> None:
    load = Scenario().load  # 10 requests per client per second
    assert load.users(30, workers=1) == 3
    assert load.users(30, workers=2) == 4
    assert load.users(1, workers=3) == 3


MIXES = st.dictionaries(st.sampled_from(["claim", "tote", "retry", "photo"]), st.integers(0, 20))


@given(MIXES.filter(lambda m: any(m.values())))
def test_the_dealer_deals_the_mix_exactly(mix: dict[str, int]) -> None:
    dealer = Dealer(mix)
    total = sum(mix.values())
    dealt = Counter(dealer.deal() for _ in range(total * 3))
    assert dealt == Counter({k: 3 * w for k, w in mix.items() if w})


# The workers' codes.


@given(st.integers(0, 300), st.integers(1, 9))
def test_no_code_is_handed_to_two_workers_and_none_is_left_out(count: int, workers: int) -> None:
    codes = tuple(f"C{i}" for i in range(count))
    shares = [share(codes, i, workers) for i in range(workers)]
    handed = [code for share in shares for code in share]
    assert len(handed) == len(set(handed)) == count
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_a_worker_past_the_planned_number_gets_no_codes() -> None:
    assert share(("a", "b", "c"), 3, 3) == []


def test_a_plan_the_data_cannot_carry_is_refused_before_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    write(data(codes=100), path)
    small = with_plan(Scenario(), rate=1, duration=10)
    assert check_plan(data(100), path, small, workers=2) <= 100
    big = with_plan(Scenario(), rate=100, duration=10)
    with pytest.raises(ScenarioError, match=r"needs 1,\d{3} fresh codes .* has 100"):
        check_plan(data(100), path, big, workers=2)
    used_marker(path).write_text("run-1\n")
    with pytest.raises(ScenarioError, match="run run-1 already claimed its codes"):
        check_plan(data(100), path, small, workers=2)


# Figures and objectives.


@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0, 5000)), max_size=200))
def test_buckets_merged_from_workers_equal_one_bucket_of_every_request(
    requests: list[tuple[int, float]],
) -> None:
    workers = [figures.Bucket() for _ in range(3)]
    whole = figures.Bucket()
    for worker, ms in requests:
        workers[worker].add(ms, None)
        whole.add(ms, None)
    merged = figures.Bucket()
    for bucket in workers:
        merged.merge(figures.Bucket.from_json(json.loads(json.dumps(bucket.as_json()))))
    assert merged == whole
    assert merged.percentile(0.99) == whole.percentile(0.99)


def test_percentiles() -> None:
    bucket = figures.Bucket()
    for ms in range(1, 101):
        bucket.add(ms, None)
    assert (bucket.percentile(0.5), bucket.percentile(0.99)) == (50.0, 99.0)
    assert figures.Bucket().percentile(0.5) is None
    assert figures.rounded(1234.5) == 1200


def kinds(**failures: Counter[str]) -> dict[str, figures.Bucket]:
    out = {}
    for kind, failed in failures.items():
        bucket = figures.Bucket()
        for _ in range(100):
            bucket.add(10, None)
        for reason, n in failed.items():
            for _ in range(n):
                bucket.add(10, reason)
        out[kind] = bucket
    return out


def test_objectives_count_what_they_name() -> None:
    slo = {"max_5xx": 0, "max_failed_fresh_claims": 0, "max_error_rate": 0.05,
           "claim_p99_ms": 20, "tote_p99_ms": 20}  # fmt: skip
    scenario = parse({"slo": slo})
    measured = kinds(
        claim=Counter({"HTTP 503": 1, "no answer": 1, "fresh code did not pass: unknown": 2}),
        customer_json=Counter({figures.RATE_LIMITED: 50}),
    )
    results = {o.name: o for o in figures.objectives(scenario, measured)}
    assert results["5xx or unanswered <= 0"].measured == 2
    assert results["failed fresh claims <= 0"].measured == 2
    # 429s are the service refusing a client over its rate, not errors: 4 of 254 failed.
    assert results["error rate <= 0.05"].measured == pytest.approx(4 / 254)
    assert results["error rate <= 0.05"].ok
    assert results["claim p99 <= 20 ms"].ok
    # A kind that sent nothing has not met its objective.
    assert results["tote p99 <= 20 ms"].measured is None
    assert not results["tote p99 <= 20 ms"].ok


def test_the_outage_is_the_seconds_claims_went_unanswered() -> None:
    timeline: figures.Timeline = {}
    for second, reason in [(100, None), (103, "no answer"), (104, "HTTP 502"), (106, None)]:
        timeline.setdefault(second, {}).setdefault("claim", figures.Bucket()).add(5, reason)
    timeline[105] = {"customer_json": figures.Bucket()}
    timeline[105]["customer_json"].add(5, "HTTP 503")  # not a claim
    assert figures.outage(timeline, t0=100.0) == {
        "start": 3.0, "end": 5.0, "seconds_with_failures": 2, "failed_claims": 2,
    }  # fmt: skip
    assert figures.outage({100: kinds(claim=Counter())}, t0=100.0) is None


def raw_run(cpu: float, failure: str | None = None) -> dict[str, Any]:
    timeline: figures.Timeline = {}
    for second in range(1000, 1010):
        bucket = timeline.setdefault(second, {}).setdefault("claim", figures.Bucket())
        bucket.add(5, failure if second == 1005 else None)
    return {
        "t0": 1000.0, "ended": 1010.0, "timeline": figures.timeline_json(timeline),
        "passed": ["a", "b"], "cpu": [[1000 + i, "w0", cpu] for i in range(10)],
        "retry": {}, "steps": [],
    }  # fmt: skip


def verdict(raw: dict[str, Any], invariant_ok: bool = True) -> dict[str, Any]:
    return summary.build(
        raw, Scenario(), run_id="r", api="http://x", workers=1, prepared=10, faults=[],
        invariants=[{"name": "no unit passed twice", "ok": invariant_ok, "detail": "d"}],
    )  # fmt: skip


def test_the_verdict() -> None:
    assert verdict(raw_run(cpu=20))["verdict"] == "pass"
    failed = verdict(raw_run(cpu=20, failure="HTTP 500"))
    assert failed["verdict"] == "fail"
    assert "SLO broken: 5xx or unanswered <= 0 (measured 1)" in failed["reasons"]
    broken = verdict(raw_run(cpu=20), invariant_ok=False)
    assert broken["verdict"] == "fail"
    assert broken["reasons"] == ["invariant broken: no unit passed twice: d"]
    differed = raw_run(cpu=20) | {"retry": {"pairs": 5, "differed": 1}}
    assert verdict(differed)["verdict"] == "fail"
    assert verdict(differed)["reasons"][0].startswith(
        "invariant broken: every retried claim got its first answer: 5 claims sent twice"
    )
    # A generator short of CPU measured itself: the run is invalid, whatever else it says.
    starved = verdict(raw_run(cpu=99))
    assert starved["verdict"] == "invalid"
    assert "load generator w0 used over 90% of a core" in starved["reasons"][0]


def test_429s_are_explained_in_one_line() -> None:
    result = verdict(raw_run(cpu=20, failure=figures.RATE_LIMITED))
    line = summary.rate_limited(result)
    assert line is not None
    assert line.startswith("1 customer requests got 429")
    assert "TRANSPARENCY_TRUSTED_PROXIES" in line
    assert summary.rate_limited(verdict(raw_run(cpu=20))) is None


# Faults.


def test_faults_parse() -> None:
    assert Fault.parse("10s:kill-api") == Fault(10.0, "kill-api")
    assert Fault.parse("1m:ssh db1 'sudo systemctl stop patroni'") == Fault(
        60.0, "ssh db1 'sudo systemctl stop patroni'"
    )
    for bad in ("kill-api", "10s:", "soon:kill-api"):
        with pytest.raises(ScenarioError, match="--fault"):
            Fault.parse(bad)


# The commands' errors (an HTTP client is tested without a network, as httpx's own are).


def _refusing(status: int, on: str) -> httpx.MockTransport:
    """Answers like the API until a request to a path containing ``on``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if on in request.url.path:
            return httpx.Response(status, json={"title": "no"})
        return httpx.Response(201, json={"brand": {}, "api_key": {"key": "k"}, "id": "i",
                                         "gtin": "00000000000000", "key": "s"})  # fmt: skip

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "on", "message"),
    [
        (401, "/v1/brands", "expected 201, got 401"),
        (404, "/v1/sites", "expected 201, got 404"),
        (500, "code-batches", "expected 202, got 500"),
    ],
)
def test_prepare_names_the_request_the_api_refused(status: int, on: str, message: str) -> None:
    with pytest.raises(PrepareError, match=message) as caught:
        prepare("http://api.test", ADMIN, 10, transport=_refusing(status, on))
    assert on in str(caught.value)


def test_a_connection_error_is_a_prepare_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(PrepareError, match="ConnectError"):
        prepare("http://api.test", ADMIN, 10, transport=httpx.MockTransport(refuse))


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--data", "{tmp}/missing.json"],
        ["run", "--data", "{tmp}/data.json", "--scenario", "{tmp}/missing.toml"],
        ["run", "--data", "{tmp}/data.json", "--fault", "soon:kill-api"],
        ["run", "--data", "{tmp}/data.json", "--rate", "1000"],
        ["compare", "-1", "-2", "--history", "{tmp}/none.jsonl"],
    ],
)
def test_main_turns_an_error_into_one_line_and_status_1(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(data(), tmp_path / "data.json")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loadtest: ")
    assert err.count("\n") == 1
