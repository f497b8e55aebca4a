"""Fulfilment and customer traffic against data made by ``loadtest prepare``.

    LOADTEST_DATA=data.json python -m locust -f loadtest/locustfile.py --config loadtest/locust.conf

Fresh codes are shared by the users of this process and each is popped once, so every
claim is a first claim and must pass. One locust process only: workers of a distributed
run would each load the same codes and claim them twice.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path
from typing import Any, ClassVar

import gevent  # type: ignore[import-untyped]
from locust import FastHttpUser, constant, task

from loadtest.data import LoadData, read

VERDICTS = {"authentic", "suspicious", "not_authentic", "revoked", "recalled", "expired"}
BATCH = 100


def _load() -> LoadData:
    path = os.environ.get("LOADTEST_DATA")
    if not path:
        raise SystemExit("LOADTEST_DATA: set it to the file `loadtest prepare --out` wrote")
    return read(Path(path))


DATA = _load()
# pop() takes from the end: reversed, the codes are claimed in the order they were issued.
FRESH = list(reversed(DATA.codes))
SHIPPED = list(DATA.shipped)
# Picks which shipped code a customer checks; not a secret.
PICK = random.Random()  # noqa: S311


class OutOfCodes(Exception):
    """Every fresh code has been claimed: prepare more with ``--codes``."""


def _take(count: int) -> list[str] | None:
    if len(FRESH) < count:
        return None
    taken = FRESH[-count:]
    del FRESH[-count:]
    return taken


class Traffic(FastHttpUser):
    """A mix of station claims and customer checks, as many as the API will take."""

    host = DATA.api
    wait_time = constant(0)
    station: ClassVar[dict[str, str]] = {"Authorization": f"Bearer {DATA.station_key}"}

    def _out_of_codes(self, name: str) -> None:
        self.environment.events.request.fire(
            request_type="POST", name=name, response_time=0, response_length=0, context={},
            exception=OutOfCodes(f"out of fresh codes after {len(DATA.codes)}: prepare more"),
        )  # fmt: skip
        # Quit from outside this greenlet: quitting kills the users, this one included.
        gevent.spawn(self.environment.runner.quit)

    @task(10)
    def claim_one(self) -> None:
        name = "/v1/fulfilment/verifications"
        taken = _take(1)
        if taken is None:
            return self._out_of_codes(name)
        body = {"scan": taken[0], "gtin": DATA.gtin, "shipment_id": f"lt-{uuid.uuid4()}"}
        with self.rest("POST", name, headers=self.station, json=body, name=name) as resp:
            if all_passed(resp, 1):
                SHIPPED.extend(taken)

    @task(1)
    def claim_batch(self) -> None:
        name = f"/v1/fulfilment/verifications/batch [{BATCH}]"
        taken = _take(BATCH)
        if taken is None:
            return self._out_of_codes(name)
        items = [{"scan": code, "gtin": DATA.gtin} for code in taken]
        body = {"shipment_id": f"lt-{uuid.uuid4()}", "items": items}
        url = "/v1/fulfilment/verifications/batch"
        with self.rest("POST", url, headers=self.station, json=body, name=name) as resp:
            if all_passed(resp, BATCH):
                SHIPPED.extend(taken)

    @task(5)
    def customer_check(self) -> None:
        code = PICK.choice(SHIPPED)
        name = "/v1/verify?code=[shipped]"
        with self.rest("GET", "/v1/verify", params={"code": code}, name=name) as resp:
            has_verdict(resp)

    @task(2)
    def forged_claim(self) -> None:
        name = "/v1/fulfilment/verifications [forged]"
        scan = PICK.choice(DATA.forged)
        body = {"scan": scan, "gtin": DATA.gtin, "shipment_id": f"lt-{uuid.uuid4()}"}
        url = "/v1/fulfilment/verifications"
        with self.rest("POST", url, headers=self.station, json=body, name=name) as resp:
            refused_as_forged(resp)


# Each check takes locust's response (untyped) and marks it failed, with the reason, when
# the body is not what the contract promises; a 2xx with the wrong body is a failure too.


def _answered(resp: Any) -> bool:
    if resp.status_code == 429:
        resp.failure("429: raise TRANSPARENCY_CUSTOMER_RATE_PER_MINUTE and _BURST on the API")
        return False
    if resp.status_code == 503 and "customer-checks-busy" in (resp.text or ""):
        resp.failure("503: raise TRANSPARENCY_CUSTOMER_CHECKS_PER_SECOND on the API (0: none)")
        return False
    if resp.status_code != 200:
        resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
        return False
    if not isinstance(resp.js, dict):
        resp.failure("the answer is not a JSON object")
        return False
    return True


def all_passed(resp: Any, count: int) -> bool:
    """A single claim (count 1) or a batch: every result must be a pass."""
    if not _answered(resp):
        return False
    results = [resp.js] if count == 1 else resp.js.get("results")
    if not isinstance(results, list) or len(results) != count:
        resp.failure(f"expected {count} results")
        return False
    reasons = sorted({_reason(r) for r in results} - {"pass"})
    if reasons:
        # Only reasons, no counts or times: locust groups identical failure messages.
        hint = " (is this data file from an earlier run?)" if "already_shipped" in reasons else ""
        resp.failure(f"fresh codes did not pass: {', '.join(reasons)}{hint}")
        return False
    return True


def _reason(result: object) -> str:
    if not isinstance(result, dict):
        return "not a result object"
    return "pass" if result.get("result") == "pass" else str(result.get("reason"))


def has_verdict(resp: Any) -> None:
    if _answered(resp) and resp.js.get("verdict") not in VERDICTS:
        resp.failure(f"no verdict in {resp.text[:200]}")


def refused_as_forged(resp: Any) -> None:
    if _answered(resp):
        found = (resp.js.get("result"), resp.js.get("reason"))
        if found != ("fail", "forged"):
            resp.failure(f"a forged code got {found}, expected ('fail', 'forged')")
