"""Prometheus metrics: request counts and latency per route, and pool usage.

With several API processes (``TRANSPARENCY_WORKERS``), ``transparency serve`` sets
PROMETHEUS_MULTIPROC_DIR: every process writes its figures there, and a scrape answered by
any of them sums them all. Pool gauges are then published by each process at most once a
second as it serves (and when it answers a scrape), summed over the live processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


_POOL_GAUGES = (
    ("transparency_db_pool_size", "Open pool connections"),
    ("transparency_db_pool_idle", "Idle pool connections"),
    ("transparency_db_pool_max", "Pool connections at most"),
)


def _pool_figures(pool: asyncpg.Pool) -> tuple[int, int, int]:
    return pool.get_size(), pool.get_idle_size(), pool.get_max_size()


class _PoolCollector(Collector):
    """The pool's figures read at scrape time (one process)."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    def collect(self) -> Iterable[Metric]:
        families = [GaugeMetricFamily(name, doc) for name, doc in _POOL_GAUGES]
        if self.pool is not None:
            for family, value in zip(families, _pool_figures(self.pool), strict=True):
                family.add_metric([], value)
        yield from families


class Metrics:
    """One registry per app, so that several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "transparency_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "transparency_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self._pool = _PoolCollector()
        self._published = 0.0
        self._gauges: tuple[Gauge, ...] = ()
        if self._shared is None:
            self.registry.register(self._pool)  # read at scrape time
        else:  # published by each process, summed over them
            self._gauges = tuple(
                Gauge(name, doc, multiprocess_mode="livesum", registry=self.registry)
                for name, doc in _POOL_GAUGES
            )
        # Labelled children, looked up once: labels() takes a lock and builds a key per call.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def watch_pool(self, pool: asyncpg.Pool | None) -> None:
        self._pool.pool = pool
        if pool is None and self._shared is not None:
            mark_process_dead(os.getpid(), self._shared)  # type: ignore[no-untyped-call]

    def _publish(self) -> None:
        self._published = time.monotonic()
        if self._pool.pool is not None:
            for gauge, value in zip(self._gauges, _pool_figures(self._pool.pool), strict=True):
                gauge.set(value)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)
        if self._shared is not None and time.monotonic() - self._published >= 1.0:
            self._publish()

    def render(self) -> bytes:
        if self._shared is None:
            return generate_latest(self.registry)
        self._publish()
        pooled = CollectorRegistry()
        MultiProcessCollector(pooled, self._shared)  # type: ignore[no-untyped-call]
        return generate_latest(pooled)
