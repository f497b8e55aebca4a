"""Worker processes for CPU work that must not hold the event loop (code generation, file
parsing, image decoding)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """In a child process: receive ``sig`` when the process ``parent`` ends, however it ends,
    even by kill -9 (Linux; elsewhere the parent's own stop still applies)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # it died before we asked
        os.kill(os.getpid(), sig)


def release_memory() -> None:
    """Hand freed memory back to the system after a large piece of work.

    A job's chunks and parsed files are freed as soon as they are done with (reference
    counting), but glibc keeps freed heap pages (and raises its mmap threshold after large
    frees), so a process's RSS would stay at its peak for ever; malloc_trim returns them.
    Called once a job is done, never per chunk: trimmed pages must be faulted in again
    by the next allocation (an import trimmed per piece ran 6x slower). No gc.collect():
    a full collection walks every object and holds the event loop.
    """
    if sys.platform == "linux":
        with suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def process_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the service process has threads and an event loop.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
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
