"""The background job runner: runs queued batch jobs inside the service, one at a time.

Each process that runs jobs (``settings.run_jobs``; under ``serve`` with several API
processes, a process of its own) runs one loop that claims a runnable job with a lease
(pending, or running with an expired lease: its holder died), renews the lease while the
job works, and hands the job to the handler registered for its kind. The runner knows no
job's body: the services register one per kind (``services.jobs.register``). A handler
names the job's lease token in each of its writes, which fails with LeaseLost once another
process has taken the job over; a job of a kind nobody registered fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from transparency.db import batches
from transparency.domain.batches import Job, JobKind
from transparency.runtime.notifications import Listener
from transparency.runtime.workers import LazyPool, in_turn, release_memory

log = logging.getLogger("transparency.runtime.jobs")

POLL_SECONDS = 0.5

T = TypeVar("T")
Handler = Callable[["JobRunner", Job], Awaitable[None]]


class NoHandler(Exception):
    """A job of a kind that no handler was registered for."""


@dataclass(frozen=True, slots=True)
class _Registration:
    handler: Handler
    fresh_workers_after: bool


class JobRunner:
    def __init__(self, pool: asyncpg.Pool, *, lease_seconds: float = 15.0) -> None:
        self.pool = pool
        self.lease_seconds = lease_seconds
        self._handlers: dict[JobKind, _Registration] = {}
        self._wake = asyncio.Event()
        self._workers = LazyPool(2)  # one per core: PostgreSQL and the event loop share them

    def register(
        self, kind: JobKind, handler: Handler, *, fresh_workers_after: bool = False
    ) -> None:
        """Run jobs of ``kind`` with ``handler``; ``fresh_workers_after``: shut the worker
        processes down after each such job (they start again when next needed)."""
        self._handlers[kind] = _Registration(handler, fresh_workers_after)

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def follow(self, listener: Listener) -> None:
        """Wake whenever any process queues a batch (``batches.insert`` notifies)."""

        async def catch_up(_full: bool) -> None:
            self.wake()  # whatever was queued unheard: the poll would find it anyway

        listener.on(batches.CHANNEL, lambda _: self.wake(), catch_up)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop(), name="job-runner")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])  # the caller's own cancellation still propagates
            # The job in hand stops here (its lease runs out, and it resumes), and so does
            # whatever a worker was doing for it.
            self._workers.shutdown(kill=True)

    def cpu(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run pure CPU work (code generation, file parsing) in a worker process."""
        # Each piece takes a bulk turn in its worker: one at a time per bulk CPU (turns.py).
        return asyncio.get_running_loop().run_in_executor(self._workers.get(), in_turn, fn, *args)

    async def _loop(self) -> None:
        while True:
            try:
                ran = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job runner failed; retrying")
                ran = False
            if not ran:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the wake
                # when a stop arrives in the same turn, and swallows the stop.
                with suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()
                self._wake.clear()

    async def run_one(self) -> bool:
        """Claim and run one job; False when there was none."""
        job = await batches.claim(self.pool, self.lease_seconds)
        if job is None:
            return False
        batch_id, kind = job.batch.id, job.batch.kind
        log.info("job claimed", extra={"batch_id": str(batch_id), "kind": kind.value})
        registration = self._handlers.get(kind)
        keeper = asyncio.create_task(self._keep_lease(batch_id, job.lease_token), name="job-lease")
        try:
            if registration is None:
                raise NoHandler(f"no handler for {kind.value} jobs")
            await registration.handler(self, job)
        except asyncio.CancelledError:
            raise  # shutting down: the lease expires and the job resumes later
        except batches.LeaseLost:
            log.warning("job taken over by another process", extra={"batch_id": str(batch_id)})
        except Exception as exc:
            log.exception("job failed", extra={"batch_id": str(batch_id)})
            await batches.fail(self.pool, batch_id, job.lease_token, f"{type(exc).__name__}")
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])  # no renewal after this (a shutdown still propagates)
            if registration is not None and registration.fresh_workers_after:
                self._workers.shutdown()
            release_memory()
        return True

    async def _keep_lease(self, batch_id: UUID, token: UUID) -> None:
        """Renew a running job's lease, three times a lease, until the job ends.

        The one place a lease is extended. An import holds one transaction for as long as
        its file takes: without this, a job that outlasts its lease would be claimed and run
        a second time by another process (or another API process of the same `serve`) while
        the first still runs it. Should the lease run out all the same (a long pause), the
        job's next write raises LeaseLost.
        """
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await batches.renew(self.pool, batch_id, token, self.lease_seconds):
                    return
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                # The next turn tries again; a lease outlives two missed renewals.
                log.warning("could not renew a job's lease", extra={"batch_id": str(batch_id)})
