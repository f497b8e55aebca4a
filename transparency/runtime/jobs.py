"""The background job runner: issuance and import jobs, run inside the service.

Each process runs one loop that claims a runnable job with a lease (pending, or running
with an expired lease: its holder died), renews the lease while it works, and works through
the job in chunks. An issuance job writes each chunk of codes with COPY and records its
progress in the same transaction, so after a crash the job resumes where its last
committed chunk ended: no code lost, none written twice. Units of a batch are not visible
to verification until the batch is done. Code generation runs in a worker process,
overlapped with the COPY of the previous chunk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from transparency.db import batches, products, units
from transparency.domain import issuance
from transparency.runtime.keyring import KeyRing
from transparency.runtime.workers import LazyPool, release_memory

log = logging.getLogger("transparency.runtime.jobs")

POLL_SECONDS = 0.5

ImportHandler = Callable[[asyncpg.Pool, asyncpg.Record, "JobRunner"], Awaitable[None]]
T = TypeVar("T")


class JobRunner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        keyring: KeyRing,
        *,
        chunk_size: int,
        lease_seconds: float = 15.0,
        import_handler: ImportHandler | None = None,
    ) -> None:
        self.pool = pool
        self.keyring = keyring
        self.chunk_size = chunk_size
        self.lease_seconds = lease_seconds
        self.import_handler = import_handler
        self._wake = asyncio.Event()
        self._workers = LazyPool(2)  # one per core: PostgreSQL and the event loop share them

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop(), name="job-runner")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            self._workers.shutdown()

    def cpu(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run pure CPU work (code generation, file parsing) in a worker process."""
        return asyncio.get_running_loop().run_in_executor(self._workers.get(), fn, *args)

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
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                self._wake.clear()

    async def run_one(self) -> bool:
        """Claim and run one job; False when there was none."""
        job = await batches.claim(self.pool, self.lease_seconds)
        if job is None:
            return False
        log.info("job claimed", extra={"batch_id": str(job["id"]), "kind": job["kind"]})
        keeper = asyncio.create_task(
            self._keep_lease(job["id"], job["lease_token"]), name="job-lease"
        )
        try:
            if job["kind"] == "issue":
                await self._issue(job)
            elif self.import_handler is not None:
                await self.import_handler(self.pool, job, self)
        except asyncio.CancelledError:
            raise  # shutting down: the lease expires and the job resumes later
        except batches.LeaseLost:
            log.warning("job taken over by another process", extra={"batch_id": str(job["id"])})
        except Exception as exc:
            log.exception("job failed", extra={"batch_id": str(job["id"])})
            await batches.fail(self.pool, job["id"], job["lease_token"], f"{type(exc).__name__}")
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])  # no renewal after this (a shutdown still propagates)
            if job["kind"] != "issue":
                # Parsing a file leaves each worker's heap the size of its piece of the
                # file; new workers (about half a second to start) are lighter.
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

    async def _issue(self, job: asyncpg.Record) -> None:
        key = self.keyring.get(job["options"]["key_id"])
        if key is None:
            await self.keyring.load(self.pool)
            key = self.keyring.get(job["options"]["key_id"])
        if key is None:
            raise LookupError("the batch's signing key is gone")
        product = await products.get(self.pool, job["product_id"])
        assert product is not None
        batch_id: UUID = job["id"]
        token: UUID = job["lease_token"]
        remaining = job["requested"] - job["progress"]
        tail = units.row_tail(
            job["brand_id"], job["product_id"], batch_id, job["lot"], job["expiry"], "active"
        )

        def generate(n: int) -> asyncio.Future[bytes]:
            return self.cpu(
                issuance.generate_lines, job["format"], key.id, key.hmac_secret, product.gtin, n
            )

        sizes = [
            min(self.chunk_size, remaining - done) for done in range(0, remaining, self.chunk_size)
        ]
        if sizes:
            ahead = generate(sizes[0])  # each chunk is made while the one before is written
            for count, following in zip(sizes, [*sizes[1:], 0], strict=True):
                chunk = await ahead
                if following:
                    ahead = generate(following)
                await self._write_chunk(batch_id, token, chunk, tail, count, regenerate=generate)
        async with self.pool.acquire() as conn:
            await batches.finish(conn, batch_id, token)
        log.info("job done", extra={"batch_id": str(batch_id)})

    async def _write_chunk(
        self,
        batch_id: UUID,
        token: UUID,
        codes: bytes,
        tail: bytes,
        count: int,
        *,
        regenerate: Callable[[int], asyncio.Future[bytes]],
    ) -> None:
        for _attempt in range(5):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await units.copy_codes(conn, codes, tail)
                    await batches.advance(conn, batch_id, token, count)
                return
            except asyncpg.UniqueViolationError:
                # A random serial met an existing one (about 2**-72 per pair): draw anew.
                codes = await regenerate(count)
        raise RuntimeError("could not write a chunk of unique codes")


def options_for_issue(key_id: int) -> dict[str, Any]:
    return {"key_id": key_id}
