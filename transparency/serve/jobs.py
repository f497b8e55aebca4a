"""The job process: batch jobs (issuance, imports) run here, not in an API process.

A job is bulk work: an import of a million rows does Python bookkeeping for every row, and
a batch of a million codes signs every one. Run in an API process, that work shares the
event loop that answers stations' claims, and a brand's hostile import raised their p99
about a hundredfold (bench_faults.py). So `serve` with several API processes runs jobs in
one process of its own, as background work (SCHED_IDLE at nice 10, which its worker
processes inherit), and the API processes only queue them (``settings.run_jobs`` false). A queued
batch is announced on the ``jobs`` channel, so this process starts it at once.

    python -m transparency jobs     # this process alone, beside API processes elsewhere

It keeps the keyring current as an API process does (issuance signs with it), stops on
SIGTERM or SIGINT, and a job it was running when it stopped is resumed by the next runner
once its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from transparency.db.pool import open_pool
from transparency.runtime.jobs import JobRunner
from transparency.runtime.keyring import KeyRing
from transparency.runtime.notifications import JOBS_APPLICATION_NAME, Listener
from transparency.runtime.settings import Settings, load_master_key
from transparency.runtime.workers import background, name_process
from transparency.services import jobs

log = logging.getLogger("transparency.serve.jobs")

NICE = 10  # below the API processes and PostgreSQL: a claim never waits behind a job
NAME = b"transp-jobs"  # what ps and top show (/proc/<pid>/comm)


async def run(settings: Settings, *, started: Callable[[], None] = lambda: None) -> None:
    """Run jobs until SIGTERM or SIGINT; ``started`` once the keyring is loaded."""
    if settings.database_url is None:
        raise ValueError("the job process needs settings with a database_url")
    dsn = settings.database_url.get_secret_value()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_pool(
        dsn,
        min_size=1,
        max_size=4,  # the job's transaction, its report, lease renewals, the keyring
        acquire_timeout=settings.pool_acquire_timeout_seconds,
        statement_timeout=settings.statement_timeout_seconds,
        idle_in_transaction_timeout=settings.idle_in_transaction_timeout_seconds,
    ) as pool:
        keyring = KeyRing(load_master_key(settings))
        listener = Listener(
            dsn,
            catch_up_seconds=settings.key_cache_seconds / 2,
            application_name=JOBS_APPLICATION_NAME,  # not an API process's: /readyz's
        )
        keyring.follow(listener, pool)
        runner = JobRunner(pool, lease_seconds=settings.job_lease_seconds)
        jobs.register(runner, keyring, chunk_size=settings.job_chunk_size)
        runner.follow(listener)
        async with listener.running(), runner.running():
            log.info("job process running", extra={"pid": os.getpid()})
            started()
            await stop.wait()
    log.info("job process stopped")


def lower_priority() -> None:
    """Run this process (and the workers it spawns) as background work, SCHED_IDLE at nice
    ``NICE`` (``workers.background``), then name it for ps: whoever finds it by its name
    (a test of a replaced job process did, in the moment between the two) finds it lowered."""
    background()
    name_process(NAME)
