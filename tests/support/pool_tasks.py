"""Tasks for worker-pool tests: importable by a spawned worker, unlike a test's own."""

from __future__ import annotations


def large_result(size: int) -> bytes:
    """A result whose transfer back to the pool takes a while (hundreds of megabytes)."""
    return b"x" * size


def interval(seconds: float) -> tuple[float, float]:
    """When this task ran (the system's monotonic clock, shared by processes), ``seconds``
    long: tasks' intervals show which ran at once."""
    import time

    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()
