"""Tasks for worker-pool tests: importable by a spawned worker, unlike a test's own."""

from __future__ import annotations


def large_result(size: int) -> bytes:
    """A result whose transfer back to the pool takes a while (hundreds of megabytes)."""
    return b"x" * size
