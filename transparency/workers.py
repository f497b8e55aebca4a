"""Worker processes for CPU work that must not hold the event loop (code generation, file
parsing, image decoding)."""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from concurrent.futures import ProcessPoolExecutor


def _die_with_parent() -> None:
    """In the worker: end when the service process ends, even by kill -9 (Linux)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def process_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the service process has threads and an event loop.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with_parent,
    )


class LazyPool:
    """A process pool started on first use (spawning costs a second) and shut at exit."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = process_pool(self.workers)
        return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
