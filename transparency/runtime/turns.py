"""Turns on the bulk CPUs: at most one bulk task runs per CPU given to bulk work, across
every process of the machine (photo decoders, label renderers, a job's workers).

Bulk work already runs SCHED_IDLE on the CPUs the claims leave it (``workers.background``),
yet how many bulk processes are runnable at once still shows in the claims. On the 2-core
development machine, one CPU given to bulk work, the stations' claim p99 was 1.5x its
value with no bulk work beside one SCHED_IDLE busy loop, 2.2x beside two and 2.8x beside
three (medians of four runs). Three decoders decoding in a loop cost 3.2x, the same three
taking turns 1.5x, what one loop costs; hostile photos, which kept three or four decoders
runnable (two per API process), cost 2.3x to 3.9x before and 1.1x to 2.0x after. Most
likely the scheduler's load balancer counts runnable tasks whatever their policy: a CPU
with two SCHED_IDLE tasks looks overloaded, and a claim's process woken on the other,
busy, CPU waits there rather than be moved over.

A turn is an exclusive ``flock`` on one of as many files as there are bulk CPUs (the
calling process's own CPUs: bulk processes are pinned to them), so a process killed while
it holds one, a decode past its time limit, gives it back as it dies. Whoever waits for a
turn sleeps in the kernel, not runnable; with several turns it waits for one of them in
particular (spread by process id), so another may stay free until that one is given back.
A task holds its turn only while it computes (a decode is bounded by its time limit, a
job's piece by the chunk size): ``released()`` gives it back around a read or write that
may wait on the other end, a label download's slow client.

Each turn has a door, a second file: whoever waits for a turn holds its door meanwhile,
and whoever takes a turn passes its door first. A holder that gives its turn back and
takes it again at once (a label render does, around each 64 KiB it writes) therefore
waits behind a process already waiting, rather than win the turn back before that one
wakes: without doors, a label download drawn for minutes kept every photo decode and
every other render waiting for as long (flock itself promises no order). Among several
waiters at one door the kernel picks; none is passed by the same holder twice in a row.

The files live in ``TRANSPARENCY_BULK_TURNS`` (a directory), by default one per user in the
temporary directory: every service of the machine shares its CPUs, so it shares the turns.
Where files cannot be locked (no ``fcntl``, an unwritable directory) turns are not taken.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no turns
    fcntl = None  # type: ignore[assignment]

TURNS_VARIABLE = "TRANSPARENCY_BULK_TURNS"


def default_directory() -> Path:
    """Where the turns of this machine's services live, when ``TRANSPARENCY_BULK_TURNS``
    does not say: one directory per user."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"transparency-bulk-{uid}"


def bulk_cpu_count() -> int:
    """How many CPUs this (pinned) bulk process may run on: that many turns."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class Turns:
    """``count`` turns kept as files in ``directory``; one held at a time per process."""

    def __init__(self, directory: Path, count: int) -> None:
        self.directory = directory
        self.count = count
        self._files: list[tuple[int, int]] | None = None
        self._held: int | None = None

    @property
    def held(self) -> bool:
        return self._held is not None

    def take(self, *, wait: bool = True) -> bool:
        """Hold a turn, waiting (asleep) until one is free; ``wait=False``: only if one is
        free now. Whether one is held (always, where turns are not taken)."""
        if self._held is not None:
            raise RuntimeError("this process already holds a bulk turn")
        files = self._open()
        if not files or fcntl is None:
            return True
        first = os.getpid() % len(files)
        order = files[first:] + files[:first]
        # A free one at once, if any (one whose door a waiter holds is not free), else wait
        # for one (spread by process id; a turn is short) at its door.
        for turn, door in order:
            if _through(door, turn, wait=False):
                self._held = turn
                return True
        if not wait:
            return False
        turn, door = order[0]
        _through(door, turn, wait=True)
        self._held = turn
        return True

    def give_back(self) -> None:
        if self._held is not None:  # only ever set where fcntl locks
            fd, self._held = self._held, None
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold a turn for the block (taken, then given back however it ends)."""
        self.take()
        try:
            yield
        finally:
            self.give_back()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Give the held turn back for the block (a write that may wait on a slow reader),
        and take one again after it; nothing if none is held."""
        if self._held is None:
            yield
            return
        self.give_back()
        try:
            yield
        finally:
            self.take()

    def _open(self) -> list[tuple[int, int]]:
        """Each turn's file and its door's."""
        if self._files is None:
            self._files = []
            if fcntl is not None:
                with suppress(OSError):
                    self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    for n in range(self.count):
                        turn, door = self.directory / f"turn-{n}", self.directory / f"door-{n}"
                        self._files.append((_file(turn), _file(door)))
        return self._files


def _file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def _through(door: int, turn: int, *, wait: bool) -> bool:
    """Take ``turn`` holding its ``door`` meanwhile (so that no one passes a waiter); with
    ``wait=False`` only if both are free now."""
    if not _lock(door, wait=wait):
        return False
    try:
        return _lock(turn, wait=wait)
    finally:
        fcntl.flock(door, fcntl.LOCK_UN)


def _lock(fd: int, *, wait: bool) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


_turns: Turns | None = None


def turns() -> Turns:
    """This process's turns: as many as the CPUs it may run on, in the configured directory.
    Ask from a bulk process (pinned to the bulk CPUs), so that the count is theirs."""
    global _turns
    if _turns is None:
        configured = os.environ.get(TURNS_VARIABLE)
        directory = Path(configured) if configured else default_directory()
        _turns = Turns(directory, bulk_cpu_count())
    return _turns
