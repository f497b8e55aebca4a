"""The head gate: a customer upload its sender's budget refuses, answered from the request's
head before the app runs.

The app refuses a photo from a client past its customer budget (429) before it reads the
body (``routes.verification``), but only once the request has been through the whole
stack: uvicorn's request task, the app's middleware, routing, dependencies. Four clients
posting the audit's photo in a loop, each past its budget, were refused about 1,000 times
a second at about 700 µs of an API process each, and the stations' claim p99 rose 4.2x
(bench_faults.py's hostile photos). The server (``serve.http``) asks this gate instead,
once a request's head is in and before it makes the request's task: a refusal there costs
about 300 µs, nearly all of it the connection's own (accepting it, reading what came,
closing it), and the same attack raised the claims' p99 2.4x (medians of three pairs;
the Python clients took a core's worth of the same two cores). A report
(``POST /v1/reports``) had its whole form read before its budget was looked at (FastAPI
reads a form before the dependencies run): the gate refuses it before its body is sent.

The gate only looks: it finds what taking the request's token would raise, answers that
with the same problem and Retry-After the app would give (a test holds them equal), and
spends nothing, so a request it lets through is the app's, token and all, as before. It knows the
customer uploads by method and exact path; another spelling of a path reaches the app,
which refuses it the same way.
"""

from __future__ import annotations

import time

from starlette.responses import Response

from transparency.api.metrics import Metrics
from transparency.api.middleware import record, request_id
from transparency.api.problems import problem
from transparency.api.ratelimit import RateLimiter
from transparency.domain.errors import TransparencyError
from transparency.runtime import logs

# The gate's key in the state the app's lifespan yields (``app.State``), where the server
# finds it.
HEAD_GATE = "head_gate"

# (method, path) -> whether only a request without a key spends the customer budget (a
# station's photo is its claims; a report spends it whoever sends it).
CUSTOMER_UPLOADS: dict[tuple[bytes, bytes], bool] = {
    (b"POST", b"/v1/scans"): True,
    (b"POST", b"/v1/reports"): False,
}

Headers = list[tuple[bytes, bytes]]  # as the server read them: names in lower case


class HeadGate:
    """Answers a customer upload whose sender is past its budget from the request's head
    (a problem response), and every other request with None."""

    def __init__(self, limiter: RateLimiter, metrics: Metrics) -> None:
        self.limiter = limiter
        self.metrics = metrics

    def __call__(
        self, method: bytes, target: bytes, headers: Headers, peer: str | None
    ) -> Response | None:
        path = target.partition(b"?")[0]
        anonymous_only = CUSTOMER_UPLOADS.get((method, path))
        if anonymous_only is None:
            return None
        if anonymous_only and any(name == b"authorization" for name, _ in headers):
            return None
        started = time.perf_counter()
        try:
            self.limiter.hit(lambda: self._client(peer, headers), spend=False)
        except TransparencyError as exc:
            refused = exc
        else:
            return None
        given = next((v for name, v in headers if name == b"x-request-id"), b"")
        rid = request_id(given.decode("latin-1"))
        token = logs.request_id.set(rid)  # the problem names it, as the app's do
        try:
            response = problem(refused)
            response.headers["X-Request-ID"] = rid
            route = path.decode("latin-1")
            elapsed = time.perf_counter() - started
            record(self.metrics, method.decode(), route, route, response.status_code, elapsed)
        finally:
            logs.request_id.reset(token)
        return response

    def _client(self, peer: str | None, headers: Headers) -> str:
        forwarded = [v.decode("latin-1") for name, v in headers if name == b"x-forwarded-for"]
        return self.limiter.client_of(peer, forwarded)
