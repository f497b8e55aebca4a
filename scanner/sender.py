"""Sends the queue's pending claims to the API, oldest first, each under its own key.

``Sender`` is the plain, synchronous part that tests drive; ``SenderThread`` runs it beside
the camera loop, so a slow or absent API never holds up frames, and waits out outages with
a capped exponential backoff (or the API's Retry-After).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scanner.claims import Claim, ClaimQueue
from scanner.client import Client
from scanner.errors import ApiError, Unreachable

FIRST_BACKOFF = 0.5  # seconds
MAX_BACKOFF = 30.0
IDLE_WAIT = 1.0  # seconds between looks at the queue when nobody says a claim is waiting


class Sender:
    """Claims go strictly in ``seq`` order: the next is sent only once the one before has a
    definite answer recorded, so an outage delays claims but never reorders them."""

    def __init__(
        self, queue: ClaimQueue, client: Client, on_answer: Callable[[Claim], None]
    ) -> None:
        self.queue = queue
        self.client = client
        self.on_answer = on_answer

    def send_next(self) -> Claim | None:
        """Send the oldest pending claim and record its answer; None when none is pending.

        Raises ``Unreachable`` (the claim stays pending, to go again under the same key) or
        an ``ApiError`` refusing the station's key (about every claim, not this one).
        """
        claim = self.queue.next_pending()
        if claim is None:
            return None
        try:
            result = self.client.claim(
                claim.scan,
                gtin=claim.gtin,
                shipment_id=claim.shipment_id,
                idempotency_key=claim.idempotency_key,
            )
        except ApiError as exc:
            if exc.key_refused:
                raise
            # The API refused this claim itself (422: not a GTIN, say): sending it again
            # would get the same refusal, so it is the claim's answer.
            result = problem_result(exc)
        self.queue.mark_sent(claim.seq, result)
        sent = replace(claim, state="sent", result=result)
        self.on_answer(sent)
        return sent

    def send_pending(self) -> int:
        """Send until the queue is empty; how many were sent. Raises as ``send_next``."""
        count = 0
        while self.send_next() is not None:
            count += 1
        return count


def problem_result(exc: ApiError) -> dict[str, Any]:
    return {
        "problem": {
            "type": exc.type,
            "status": exc.status,
            "title": exc.title,
            "detail": exc.detail,
        }
    }


def backoff(failures: int, retry_after: float | None = None) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row."""
    if retry_after is not None:
        return min(max(retry_after, 0.1), MAX_BACKOFF * 2)
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1)))


class SenderThread:
    """Runs a ``Sender`` in a daemon thread until ``stop()``.

    An error that retrying cannot cure (a refused key, a bug) ends the thread and is kept in
    ``fatal`` for the station loop to raise.
    """

    def __init__(self, sender: Sender, *, idle_wait: float = IDLE_WAIT) -> None:
        self.sender = sender
        self.idle_wait = idle_wait
        self.fatal: BaseException | None = None
        self.failures = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="claim-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A claim was queued: send it now rather than at the next idle look."""
        self._wake.set()

    def stop(self, timeout: float) -> bool:
        """Stop after the request in flight, if any; whether the thread ended in time."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stopping:
                # Cleared before looking at the queue, so a wake that comes while sending
                # is not lost: the wait below returns at once.
                self._wake.clear()
                try:
                    while not self._stopping and self.sender.send_next() is not None:
                        self.failures = 0
                except Unreachable as exc:
                    self.failures += 1
                    self._sleep(backoff(self.failures, exc.retry_after))
                else:
                    self._wake.wait(self.idle_wait)
        except Exception as exc:  # handed to the station loop, which raises it
            self.fatal = exc

    def _sleep(self, seconds: float) -> None:
        # New claims do not cut an outage's backoff short: that would hammer a down API.
        deadline = time.monotonic() + seconds
        while not self._stopping and (remaining := deadline - time.monotonic()) > 0:
            self._wake.wait(remaining)
            self._wake.clear()
