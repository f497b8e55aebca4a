"""Prometheus metrics: request counts and latency per route, and pool usage.

With several API processes (``TRANSPARENCY_WORKERS``), ``transparency serve`` sets
PROMETHEUS_MULTIPROC_DIR: request counts and latencies are pooled over the processes
there, and the pool gauges are those of the process that answers, labelled with its pid.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _PoolCollector(Collector):
    def __init__(self, labels: dict[str, str]) -> None:
        self.pool: asyncpg.Pool | None = None
        self.labels = labels

    def collect(self) -> Iterable[Metric]:
        names, values = list(self.labels), list(self.labels.values())
        size = GaugeMetricFamily("transparency_db_pool_size", "Open pool connections", labels=names)
        idle = GaugeMetricFamily("transparency_db_pool_idle", "Idle pool connections", labels=names)
        limit = GaugeMetricFamily(
            "transparency_db_pool_max", "Pool connections at most", labels=names
        )
        if self.pool is not None:
            size.add_metric(values, self.pool.get_size())
            idle.add_metric(values, self.pool.get_idle_size())
            limit.add_metric(values, self.pool.get_max_size())
        yield from (size, idle, limit)


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
        self._pool = _PoolCollector({"pid": str(os.getpid())} if self._shared else {})
        self.registry.register(self._pool)
        # Labelled children, looked up once: labels() takes a lock and builds a key per call.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def watch_pool(self, pool: asyncpg.Pool | None) -> None:
        self._pool.pool = pool

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

    def render(self) -> bytes:
        if self._shared is None:
            return generate_latest(self.registry)
        pooled = CollectorRegistry()
        MultiProcessCollector(pooled, self._shared)  # type: ignore[no-untyped-call]
        pooled.register(self._pool)
        return generate_latest(pooled)
