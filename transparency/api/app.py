"""The app factory. The pool is born in the lifespan; nothing is created at import."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import TypedDict

import asyncpg
from fastapi import FastAPI

from transparency import __version__
from transparency.api import problems
from transparency.api.console import downloads as console_downloads
from transparency.api.console import links as console_links
from transparency.api.console import routes as console
from transparency.api.fastpath import lean
from transparency.api.fastpath.lane import LaneApp
from transparency.api.gate import HeadGate
from transparency.api.metrics import Metrics
from transparency.api.middleware import BodyLimit, RequestContext
from transparency.api.pages import routes as pages
from transparency.api.ratelimit import (
    SHARED_FILE_ENV,
    LocalBuckets,
    RateLimiter,
    SharedBuckets,
    networks,
)
from transparency.api.routes import (
    admin,
    brand_ops,
    brands,
    codes,
    customer,
    epcis,
    fulfilment,
    links,
    me,
    ops,
    products,
    reports,
    resolver,
    verification,
)
from transparency.db.pool import is_citus, open_pool
from transparency.domain.reports import MAX_PHOTO_BYTES
from transparency.runtime import logs
from transparency.runtime.claims import ClaimQueue
from transparency.runtime.events import EventBuffer
from transparency.runtime.jobs import JobRunner
from transparency.runtime.keyring import KeyRing
from transparency.runtime.notifications import Listener
from transparency.runtime.settings import Settings, get_settings, load_master_key
from transparency.runtime.workers import KillablePool
from transparency.services import exports, jobs
from transparency.services.auth import KeyCache

# Seconds a photo waits for a decoder that is still starting (see create_app).
DECODER_START_WAIT = 15.0

# A report's photo and its form fields (place, note: 2.5 kB of text at most, encoded).
REPORT_MAX_BYTES = MAX_PHOTO_BYTES + 65_536


class State(TypedDict):
    pool: asyncpg.Pool
    keyring: KeyRing
    runner: JobRunner
    events: EventBuffer
    claims: ClaimQueue
    key_cache: KeyCache
    listener: Listener
    head_gate: HeadGate  # gate.HEAD_GATE: the server asks it before a request's task starts


def from_environment() -> FastAPI:
    """The app of one of several API processes (``TRANSPARENCY_WORKERS``), built from the
    environment that ``transparency serve`` prepared: database resolved, migrations done."""
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``, whose database_url must already be resolved."""
    if settings.database_url is None:
        raise ValueError("create_app needs settings with a database_url")
    dsn = settings.database_url.get_secret_value()
    master_key = load_master_key(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with open_pool(
            dsn,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            acquire_timeout=settings.pool_acquire_timeout_seconds,
            statement_timeout=settings.statement_timeout_seconds,
            idle_in_transaction_timeout=settings.idle_in_transaction_timeout_seconds,
        ) as pool:
            # What this process holds of keys is checked against the database twice per
            # bound, and after every reconnect of the listener (notifications.py); what a
            # check or a request uses of it is never older than the bound (``current``,
            # ``KeyCache.get``).
            bound = settings.key_cache_seconds
            keyring = KeyRing(master_key, max_age=bound)
            runner = JobRunner(pool, lease_seconds=settings.job_lease_seconds)
            jobs.register(runner, keyring, chunk_size=settings.job_chunk_size)
            metrics.watch_pool(pool)
            events = EventBuffer(pool)
            async with pool.acquire() as conn:
                citus = await is_citus(conn)
            claims = ClaimQueue(pool, together=not citus)
            key_cache = KeyCache(max_age=bound)
            listener = Listener(dsn, catch_up_seconds=bound / 2)
            keyring.follow(listener, pool)
            key_cache.follow(listener, pool)
            # Jobs here, or (serve with several processes) in a process of their own.
            running_jobs = runner.running() if settings.run_jobs else nullcontext()
            if settings.run_jobs:
                runner.follow(listener)
            # The listener first: the keyring is loaded before any job or request uses it.
            async with listener.running(), running_jobs, events.running():
                # Everything made at start-up (modules, GS1 tables, keys) lives as long as
                # the process: keep it out of the collector's full passes, whose pauses
                # showed up as the checks' tail latency.
                gc.collect()
                gc.freeze()
                # Here, not at build time: OpenTelemetry is configured by then, if at all.
                app.open_lane([fulfilment.router, customer.router])
                yield {
                    "pool": pool,
                    "keyring": keyring,
                    "runner": runner,
                    "events": events,
                    "claims": claims,
                    "key_cache": key_cache,
                    "listener": listener,
                    "head_gate": HeadGate(app.state.customer_limiter, metrics),
                }
            metrics.watch_pool(None)
            app.state.scan_workers.shutdown()
            app.state.customer_limiter.buckets.close()

    app = LaneApp(
        title="Transparency",
        version=__version__,
        description="Product serialization and verification.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    # Decoders are started on the first photo and killed past the time limit (workers.py).
    # One starts in 0.3-1.4 s on the 2-core development machine, busy with the test suite;
    # a photo waits for one at most DECODER_START_WAIT, then is refused (503, Retry-After).
    app.state.scan_workers = KillablePool(
        settings.scan_workers, settings.scan_queue, warm="scanner", start_wait=DECODER_START_WAIT
    )
    app.state.label_renders = exports.Renders(settings.label_renders)
    shared = os.environ.get(SHARED_FILE_ENV)  # several API processes: one budget per client
    app.state.customer_limiter = RateLimiter(
        settings.customer_rate_per_minute,
        settings.customer_burst,
        SharedBuckets(shared) if shared else LocalBuckets(),
        trusted_proxies=networks(settings.trusted_proxies),
        process_rate=settings.customer_checks_per_second,
    )
    problems.install(app)
    # Routes are matched in order: the checks stations make for every unit come first.
    routes = (fulfilment, customer, verification, ops, admin, products, codes, brand_ops, pages)
    for module in routes:
        app.include_router(module.router)
    app.include_router(console.router)  # the brand console's pages, then its downloads
    app.include_router(console_downloads.router)
    app.include_router(console_links.router)  # a product's resolver links
    app.include_router(me.router)
    app.include_router(brands.router)  # brand profiles
    app.include_router(reports.router)  # customers' reports
    app.include_router(epcis.router)  # EPCIS 2.0 capture and query
    app.include_router(links.router)  # the resolver's links, by brands
    app.include_router(resolver.router)  # the GS1-conformant resolver: /01/..., .well-known
    resolver.serve_compressed(app)  # compressed URIs: on paths no route knows
    lean.register_schemas(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        large={
            "/serial-imports": settings.max_import_bytes,
            "/epcis/capture": epcis.MAX_BYTES,
            "/v1/scans": settings.scan_max_bytes,
            # a customer's report: its photo and a few fields of text
            "/v1/reports": REPORT_MAX_BYTES,
            "/t/report": REPORT_MAX_BYTES,
        },
    )
    app.add_middleware(RequestContext, metrics=metrics)
    return app
