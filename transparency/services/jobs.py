"""The body of each kind of batch job, registered with the service's job runner."""

from __future__ import annotations

from transparency.domain.batches import Job, JobKind
from transparency.runtime.jobs import JobRunner
from transparency.runtime.keyring import KeyRing
from transparency.services.imports import run_import
from transparency.services.issuance import run_issue


def register(runner: JobRunner, keyring: KeyRing, *, chunk_size: int) -> None:
    """Give ``runner`` a handler for every kind of job; issuance writes ``chunk_size`` codes
    a transaction."""

    async def issue(runner: JobRunner, job: Job) -> None:
        await run_issue(runner, job, keyring, chunk_size=chunk_size)

    runner.register(JobKind.ISSUE, issue)
    # Parsing a file leaves each worker's heap the size of its piece of the file; new
    # workers (about half a second to start) are lighter.
    runner.register(JobKind.IMPORT, run_import, fresh_workers_after=True)
