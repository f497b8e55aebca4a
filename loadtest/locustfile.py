"""Fulfilment, customer and brand traffic against data made by ``loadtest prepare``.

``loadtest run`` starts this file as locust's master and N workers (locust's distributed
mode); ``loadtest worker`` starts one more worker on another machine. The master sends
each worker the scenario and the run id when the run starts; every worker reads the data
file of its own machine.

- **Disjoint codes.** Worker ``i`` of ``n`` claims only ``codes[i::n]`` (its index comes
  from the master), so no two workers ever claim one code, and every claim of a fresh code
  must pass.
- **Rate.** Each simulated client sends ``per_user_rate`` requests per second; the shape
  (on the master) sets how many clients run, so the rate follows the scenario's plan until
  the service no longer keeps up.
- **A record, as Jepsen keeps one.** Each worker counts every request per second and kind
  (``figures.Bucket``) and keeps every code it saw pass; a claim that got no answer (no
  connection, 5xx) is sent again later with the same Idempotency-Key and shipment, until
  it is answered, so that the record converges with the service's after a fault.
- **Its own CPU.** Each worker measures its CPU every second: a run whose generator was
  short of CPU measured the generator, not the service.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import psutil
from locust import FastHttpUser, LoadTestShape, events, runners, task
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.runners import MasterRunner, WorkerRunner

from loadtest import figures
from loadtest.data import LoadData, read, share
from loadtest.errors import LoadTestError
from loadtest.scenario import (
    KINDS,
    MIN_ACHIEVED,
    RAMP_LAG,
    Dealer,
    RampPlan,
    Scenario,
    Step,
    parse,
)

# Workers report every second (locust's default is 3 s): the ramp judges a step on
# reports that are at most a second late.
runners.WORKER_REPORT_INTERVAL = 1.0
VERDICTS = {"authentic", "suspicious", "not_authentic", "revoked", "recalled", "expired"}
RETRY_AFTER = 0.5  # seconds before an unanswered claim is sent again
DRAIN_SECONDS = 30.0  # at the end, how long unanswered claims are sent again
SHIPPED_KEPT = 10_000  # codes shipped during the run that customers may check, at most
# Picks kinds, shipped codes and client addresses; not secrets.
PICK = random.Random()  # noqa: S311


def _options(parser: Any) -> None:
    parser.add_argument("--lt-scenario", default="{}", help="the scenario as JSON")
    parser.add_argument("--lt-run-id", default="run", help="names the run's shipments")
    parser.add_argument("--lt-workers", type=int, default=1, help="workers sharing the codes")
    parser.add_argument("--lt-run-dir", default="", help="where the master writes raw.json")
    parser.add_argument(
        "--lt-forwarded-for", default=False, action="store_true",
        help="customer requests name a random client address (X-Forwarded-For)",
    )  # fmt: skip


@dataclass
class Claim:
    """One claim request, kept whole so that it can be sent again unchanged."""

    kind: str
    codes: list[str]
    body: dict[str, Any]
    key: str  # Idempotency-Key (single claims)
    attempts: int = 0
    not_before: float = 0.0


@dataclass
class Worker:
    """This worker's share of the run, and its record of what it was told."""

    scenario: Scenario
    data: LoadData
    run_id: str
    index: int
    forwarded_for: bool
    fresh: list[str]
    shipped: list[str]
    timeline: figures.Timeline = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    retry: Counter[str] = field(default_factory=Counter)
    unanswered: deque[Claim] = field(default_factory=deque)
    cpu: list[tuple[int, float]] = field(default_factory=list)
    shipments: int = 0
    dealer: Dealer = field(init=False)

    def __post_init__(self) -> None:
        self.dealer = Dealer(self.scenario.mix)  # one for the worker: its mix is exact

    def shipment(self) -> str:
        self.shipments += 1
        return f"lt-{self.run_id}-w{self.index}-{self.shipments:07d}"

    def keep_shipped(self, code: str) -> None:
        """A code shipped during the run, for customers to check; a soak's millions of
        passes replace one another in a list of SHIPPED_KEPT."""
        if len(self.shipped) < SHIPPED_KEPT:
            self.shipped.append(code)
        else:
            self.shipped[PICK.randrange(SHIPPED_KEPT)] = code

    def take(self, count: int) -> list[str] | None:
        if len(self.fresh) < count:
            return None
        taken = self.fresh[-count:]
        del self.fresh[-count:]
        return taken

    def report(self) -> dict[str, Any]:
        """What was recorded since the last report; cleared, with no yield in between."""
        out = {
            "timeline": figures.timeline_json(self.timeline),
            "passed": self.passed,
            "cpu": self.cpu,
            "retry": dict(self.retry),
            "index": self.index,
        }
        self.timeline, self.passed, self.cpu, self.retry = {}, [], [], Counter()
        return out


WORKER: Worker | None = None


def _worker() -> Worker:
    if WORKER is None:
        raise RuntimeError("the run has not started on this worker")
    return WORKER


def _start(environment: Environment, **_: Any) -> None:
    global WORKER
    options: Any = environment.parsed_options
    if isinstance(environment.runner, MasterRunner):
        MASTER.start(environment)
        return
    path = os.environ.get("LOADTEST_DATA")
    if not path:
        raise SystemExit("LOADTEST_DATA: set it to the file `loadtest prepare --out` wrote")
    data = read(Path(path))
    index = environment.runner.worker_index if isinstance(environment.runner, WorkerRunner) else 0
    scenario = parse(json.loads(options.lt_scenario))
    # pop() takes from the end: reversed, the codes are claimed in the order they were issued.
    fresh = list(reversed(share(data.codes, index, options.lt_workers)))
    WORKER = Worker(
        scenario=scenario, data=data, run_id=options.lt_run_id, index=index,
        forwarded_for=options.lt_forwarded_for, fresh=fresh, shipped=list(data.shipped),
    )  # fmt: skip
    gevent.spawn(_measure_cpu, WORKER)


def _measure_cpu(worker: Worker) -> None:
    me = psutil.Process()
    me.cpu_percent(None)
    while True:
        gevent.sleep(1.0)
        worker.cpu.append((int(time.time()), me.cpu_percent(None)))


def _record(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    if WORKER is None or name not in KINDS:
        return
    if exception is None:
        failure = None
    elif isinstance(exception, CatchResponseError):
        failure = str(exception)
    else:
        failure = "no answer"  # refused, reset, timed out: the request may or may not have run
    second = int(time.time())
    WORKER.timeline.setdefault(second, {}).setdefault(name, figures.Bucket()).add(
        response_time, failure
    )


def _report(data: dict[str, Any], **_: Any) -> None:
    if WORKER is not None:
        data["loadtest"] = WORKER.report()


def _init(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message("loadtest-stop", _told_to_stop, concurrent=True)
        environment.runner.register_message("loadtest-period", _rate_set)


# Seconds between one client's requests, set by the master for the plan's current rate.
PERIOD: list[float] = [0.0]


def _rate_set(environment: Environment, msg: Any, **_: Any) -> None:
    PERIOD[0] = float(msg.data)


def _told_to_stop(environment: Environment, **_: Any) -> None:
    if environment.runner is not None:
        environment.runner.stop()


def _stopping(environment: Environment, **_: Any) -> None:
    """Master: ask every worker to stop now. A headless master stops by quitting, which
    tells workers only to quit, a moment before it exits: their last records (the drain
    of unanswered claims included) would be lost. Stopped first, each sends its record,
    which ``finish`` waits for before the master quits."""
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message("loadtest-stop")


def _stop(environment: Environment, **_: Any) -> None:
    """Workers: send every unanswered claim again until it is answered (or DRAIN_SECONDS),
    then hand the last record to the master. Master: wait for every worker's last record."""
    if isinstance(environment.runner, MasterRunner):
        MASTER.finish(environment)
        return
    if WORKER is None:
        return
    session = Drain(environment)
    deadline = time.monotonic() + DRAIN_SECONDS
    while WORKER.unanswered and time.monotonic() < deadline:
        claim = WORKER.unanswered.popleft()
        gevent.sleep(max(0.0, claim.not_before - time.monotonic()))
        session.send(claim)
    WORKER.retry["left unanswered"] += len(WORKER.unanswered)
    last = WORKER.report()
    last["done"] = True
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("loadtest-done", last)
    else:
        MASTER.take(last)


class Traffic(FastHttpUser):
    """One simulated client: station, customer or brand, by the scenario's mix."""

    # geventhttpclient sends a request again, once, when its connection breaks: the record
    # would hide a fault (and a claim could run twice unseen). Every failure is recorded,
    # and `send_claim` sends an unanswered claim again itself, with its Idempotency-Key.
    max_retries = 0

    def on_start(self) -> None:
        worker = _worker()
        self.station = {"Authorization": f"Bearer {worker.data.station_key}"}
        self.brand = {"Authorization": f"Bearer {worker.data.brand_key}"}

    def wait_time(self) -> float:
        # Requests start PERIOD apart, whatever each takes (locust's constant_throughput,
        # with the period the master sets for the plan's current rate).
        period = PERIOD[0] or 1.0 / _worker().scenario.load.per_user_rate
        last = getattr(self, "_last_start", None)
        now = time.monotonic()
        wait = period if last is None else max(0.0, last + period - now)
        self._last_start = now + wait
        return wait

    @task
    def act(self) -> None:
        getattr(self, _worker().dealer.deal())()

    # Station traffic.

    def _new_claim(self, kind: str, count: int) -> Claim | None:
        worker = _worker()
        taken = worker.take(count)
        if taken is None:
            # Out of codes: counted as a failure, so the verdict says so; `run` checks the
            # plan against the data file before it starts, so this is a plan run over.
            self.environment.events.request.fire(
                request_type="POST", name=kind, response_time=0, response_length=0,
                context={}, exception=CatchResponseError("out of fresh codes"),
            )  # fmt: skip
            return None
        body: dict[str, Any] = {"shipment_id": worker.shipment()}
        if count == 1 and kind != "tote":
            body |= {"scan": taken[0], "gtin": worker.data.gtin}
        else:
            body["items"] = [{"scan": c, "gtin": worker.data.gtin} for c in taken]
        return Claim(kind, taken, body, key=str(uuid.uuid4()))

    def claim(self) -> None:
        worker = _worker()
        due = worker.unanswered and worker.unanswered[0].not_before <= time.monotonic()
        job = worker.unanswered.popleft() if due else self._new_claim("claim", 1)
        if job is not None:
            send_claim(self.client, self.station, job)

    def tote(self) -> None:
        job = self._new_claim("tote", _worker().scenario.tote_size)
        if job is not None:
            send_claim(self.client, self.station, job)

    def retry(self) -> None:
        """A claim sent twice with one Idempotency-Key: the second answer is the first."""
        job = self._new_claim("retry", 1)
        if job is None:
            return
        first = send_claim(self.client, self.station, job)
        if first is None:
            return  # unanswered: queued, and sent again until it is
        again = Claim(job.kind, job.codes, job.body, job.key)
        second = send_claim(self.client, self.station, again, record_pass=False)
        worker = _worker()
        worker.retry["pairs"] += 1
        if second is not None and second != first:
            worker.retry["differed"] += 1

    def forged(self) -> None:
        worker = _worker()
        body = {"scan": PICK.choice(worker.data.forged), "gtin": worker.data.gtin,
                "shipment_id": worker.shipment()}  # fmt: skip
        expect_refusal(self.client, self.station, body, "forged", "forged")

    def malformed(self) -> None:
        worker = _worker()
        scan = f"NOT-A-CODE-{PICK.getrandbits(48):012x}"
        body = {"scan": scan, "gtin": worker.data.gtin, "shipment_id": worker.shipment()}
        expect_refusal(self.client, self.station, body, "malformed", "malformed")

    # Customers and brands.

    def _customer_headers(self) -> dict[str, str]:
        if not _worker().forwarded_for:
            return {}
        address = f"10.{PICK.randrange(256)}.{PICK.randrange(256)}.{PICK.randrange(1, 255)}"
        return {"X-Forwarded-For": address}

    def customer_json(self) -> None:
        code = PICK.choice(_worker().shipped)
        with rest(
            self.client, "GET", "/v1/verify", params={"code": code}, name="customer_json",
            headers=self._customer_headers(),
        ) as resp:  # fmt: skip
            if answered(resp) and resp.js.get("verdict") not in VERDICTS:
                resp.failure("no verdict")

    def customer_page(self) -> None:
        code = PICK.choice(_worker().shipped)
        with self.client.get(
            f"/t/{code}", name="customer_page", headers=self._customer_headers(),
            catch_response=True,
        ) as resp:  # fmt: skip
            if answered(resp, json=False) and "<html" not in (resp.text or "")[:500].lower():
                resp.failure("not an HTML page")

    def photo(self) -> None:
        worker = _worker()
        if not worker.data.photos:
            return
        body, content_type = multipart(PICK.choice(worker.data.photos))
        headers = {**self._customer_headers(), "Content-Type": content_type}
        with rest(self.client, "POST", "/v1/scans", name="photo", headers=headers,
                  data=body) as resp:  # fmt: skip
            if answered(resp) and not resp.js.get("codes"):
                resp.failure("no code read from the photo")

    def brand_read(self) -> None:
        with rest(self.client, "GET", "/v1/products", name="brand_read", headers=self.brand) as r:
            answered(r)


def multipart(jpeg: bytes) -> tuple[bytes, str]:
    """A form with one file field, ``image``, as a phone's browser posts it."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")  # fmt: skip
    body = head.encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@contextmanager
def rest(client: Any, method: str, url: str, *, name: str, **kwargs: Any) -> Iterator[Any]:
    """A request whose answer the caller checks (catch_response), with its JSON as ``js``
    (locust's own ``rest`` is a User method; claims are also sent from outside a user)."""
    with client.request(method, url, name=name, catch_response=True, **kwargs) as resp:
        resp.js = None
        if resp.text:
            with suppress(ValueError):  # `answered` says "not a JSON object"
                resp.js = resp.json()
        yield resp


def send_claim(
    client: Any, station: dict[str, str], job: Claim, *, record_pass: bool = True
) -> tuple[str, ...] | None:
    """Send a claim; return its results, or None (queued to be sent again) if unanswered."""
    worker = _worker()
    tote = "items" in job.body
    url = "/v1/fulfilment/verifications" + ("/batch" if tote else "")
    headers = station if tote else {**station, "Idempotency-Key": job.key}
    job.attempts += 1
    with rest(client, "POST", url, headers=headers, json=job.body, name=job.kind) as resp:
        if unanswered(resp):
            if record_pass:  # a replay's own answer is not needed: its first one counted
                job.not_before = time.monotonic() + RETRY_AFTER
                worker.unanswered.append(job)
            return None
        if not answered(resp):
            return None
        results = resp.js.get("results") if tote else [resp.js]
        if not isinstance(results, list) or len(results) != len(job.codes):
            resp.failure("wrong number of results")
            return None
        reasons = sorted({_reason(r) for r in results} - {"pass"})
        if reasons:
            resp.failure(f"{figures.FRESH_CLAIM_FAILURE}: {', '.join(reasons)}")
        elif record_pass:
            worker.passed.extend(job.codes)
            worker.keep_shipped(job.codes[0])
            if job.attempts > 1:
                worker.retry["converged"] += 1
        return tuple(_reason(r) for r in results)


def expect_refusal(
    client: Any, station: dict[str, str], body: dict[str, Any], name: str, reason: str
) -> None:
    with rest(
        client, "POST", "/v1/fulfilment/verifications", headers=station, json=body, name=name
    ) as resp:
        if answered(resp):
            found = (resp.js.get("result"), resp.js.get("reason"))
            if found != ("fail", reason):
                resp.failure(f"expected a refusal for {reason}, got {found}")


def _reason(result: object) -> str:
    if not isinstance(result, dict):
        return "not a result object"
    return "pass" if result.get("result") == "pass" else str(result.get("reason"))


def unanswered(resp: Any) -> bool:
    """No answer, or one that says nothing about the claim (5xx; 409: the first send of
    this Idempotency-Key is still running): the claim is to be sent again."""
    code = resp.status_code
    if code == 0 or code is None:
        resp.failure("no answer")
        return True
    if code >= 500 or code == 409:
        resp.failure(f"HTTP {code}")
        return True
    return False


def answered(resp: Any, *, json: bool = True) -> bool:
    """A 200 with a JSON object (or any 200 page); otherwise marked failed with a reason."""
    code = resp.status_code
    if code == 0 or code is None:
        resp.failure("no answer")
        return False
    if code == 429:
        resp.failure(figures.RATE_LIMITED)
        return False
    if code == 503 and "customer-checks-busy" in (resp.text or ""):
        resp.failure("HTTP 503 customer-checks-busy")
        return False
    if code != 200:
        resp.failure(f"HTTP {code}")
        return False
    if json and not isinstance(resp.js, dict):
        resp.failure("not a JSON object")
        return False
    return True


class Drain:
    """Sends the claims left unanswered when the users stopped, outside any user."""

    def __init__(self, environment: Environment) -> None:
        from locust.contrib.fasthttp import FastHttpSession

        base_url = environment.host or _worker().data.api
        self.client = FastHttpSession(
            base_url, environment.events.request, user=None, max_retries=Traffic.max_retries
        )
        self.station = {"Authorization": f"Bearer {_worker().data.station_key}"}

    def send(self, claim: Claim) -> None:
        send_claim(self.client, self.station, claim)


# The master: merges the workers' records, runs the shape, writes raw.json at the end.


@dataclass
class Master:
    t0: float = 0.0
    run_dir: Path | None = None
    scenario: Scenario | None = None
    workers: int = 1
    timeline: figures.Timeline = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    cpu: list[tuple[int, str, float]] = field(default_factory=list)
    retry: Counter[str] = field(default_factory=Counter)
    done: set[int] = field(default_factory=set)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def start(self, environment: Environment) -> None:
        options: Any = environment.parsed_options
        self.t0 = time.time()
        self.run_dir = Path(options.lt_run_dir) if options.lt_run_dir else None
        try:
            self.scenario = parse(json.loads(options.lt_scenario))
        except (ValueError, LoadTestError) as exc:
            if self.run_dir is not None:  # `run` says why at once, not after its wait
                (self.run_dir / "failed").write_text(f"{exc}\n")
            raise
        self.workers = options.lt_workers
        if self.run_dir is not None:
            (self.run_dir / "started").write_text(f"{self.t0}\n")
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            runner.register_message("loadtest-done", self._done)

    def take(self, report: dict[str, Any]) -> None:
        figures.merge_into(self.timeline, report["timeline"])
        self.passed.extend(report["passed"])
        self.cpu.extend((s, f"w{report['index']}", pct) for s, pct in report["cpu"])
        self.retry.update(report["retry"])
        if report.get("done"):
            self.done.add(int(report["index"]))

    def _done(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.take(msg.data)

    def finish(self, environment: Environment) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS + 10
        while len(self.done) < self.workers and time.monotonic() < deadline:
            gevent.sleep(0.1)
        if self.run_dir is None:
            return
        raw = {
            "t0": self.t0,
            "ended": time.time(),
            "timeline": figures.timeline_json(self.timeline),
            "passed": self.passed,
            "cpu": self.cpu,
            "retry": dict(self.retry),
            "workers_done": sorted(self.done),
            "steps": self.steps,
        }
        (self.run_dir / "raw.json").write_text(json.dumps(raw))


MASTER = Master()


def _worker_report(data: dict[str, Any], **_: Any) -> None:
    report = data.get("loadtest")
    if report is not None:
        MASTER.take(report)


class Plan(LoadTestShape):
    """The scenario's rate over time as a number of clients; a ramp stops at the first
    step that breaks an SLO or falls short of its rate twice in a row (``RampPlan``)."""

    _period = 0.0  # the last period sent to the workers
    _ramp: RampPlan | None = None

    def tick(self) -> tuple[int, float] | None:
        scenario = MASTER.scenario
        if scenario is None:
            return 1, 1.0  # before the master's test_start: nothing to plan yet
        load = scenario.load
        shape: Any = self  # locust's LoadTestShape is untyped
        now = float(shape.get_run_time())
        if load.shape == "ramp":
            current = self._ramp_step(scenario, now)
        else:
            current = next((s for s in load.steps() if s.start <= now < s.end), None)
        if current is None:
            return None
        users = load.users(current.rate, MASTER.workers)
        period = users / current.rate
        if period != self._period and self.runner is not None:
            self.runner.send_message("loadtest-period", period)
            self._period = period
        return users, float(users)  # all at once: a step is its rate from its start

    def _ramp_step(self, scenario: Scenario, now: float) -> Step | None:
        """The ramp's step to run at ``now``: the first one not yet judged, run on past its
        end until it is, so that the step after it (the next rate, or the same again)
        starts once it is known; None once the ramp has stopped."""
        if self._ramp is None:
            self._ramp = RampPlan(scenario.load)
        ramp = self._ramp
        judged = len(MASTER.steps)
        if judged < len(ramp.steps) and now >= ramp.steps[judged].end + RAMP_LAG:
            step = ramp.steps[judged]
            if not ramp.go_on(judged, self._judge(scenario, step, judged in ramp.repeats), now):
                return None
            judged += 1
        return ramp.steps[judged] if judged < len(ramp.steps) else None

    def _judge(self, scenario: Scenario, step: Step, again: bool) -> bool:
        # The step's first second is its clients starting; it is left out of its figures.
        start = MASTER.t0 + step.start + min(1.0, (step.end - step.start) / 4)
        end = MASTER.t0 + step.end
        kinds = figures.window(MASTER.timeline, start, end)
        achieved = sum(b.count for b in kinds.values()) / figures.whole_seconds(start, end)
        results = figures.objectives(scenario, kinds)
        broken = [r.name for r in results if not r.ok]
        if achieved < MIN_ACHIEVED * step.rate:
            broken.append(f"achieved {achieved:.0f}/s of {step.rate:.0f}/s")
        MASTER.steps.append({
            "target_rate": step.rate, "start": step.start, "end": step.end,
            "achieved_rate": round(achieved, 1),
            "p99": {k: b.percentile(0.99) for k, b in kinds.items()},
            "ok": not broken, "broken": broken, "again": again,
        })  # fmt: skip
        return not broken


# Locust's event hooks are untyped: registered through Any, not as decorators.
_events: Any = events
_events.init_command_line_parser.add_listener(_options)
_events.test_start.add_listener(_start)
_events.request.add_listener(_record)
_events.report_to_master.add_listener(_report)
_events.init.add_listener(_init)
_events.test_stopping.add_listener(_stopping)
_events.test_stop.add_listener(_stop)
_events.worker_report.add_listener(_worker_report)
