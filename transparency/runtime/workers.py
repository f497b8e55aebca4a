"""Worker processes for CPU work that must not hold the event loop (code generation, file
parsing, image decoding)."""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import multiprocessing
import os
import pickle
import select
import signal
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

from transparency.runtime.turns import turns

T = TypeVar("T")

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


BULK_CPUS_VARIABLE = "TRANSPARENCY_BULK_CPUS"


def parse_cpus(spec: str, allowed: set[int]) -> set[int]:
    """The CPUs named by ``spec`` ("auto", "all", or a list such as "1-3,5"), among
    ``allowed`` (this process's own set). "auto": every allowed CPU but the lowest, when
    there are two or more. ValueError for a list that names none of ``allowed``."""
    spec = spec.strip().lower()
    if spec == "all" or (spec == "auto" and len(allowed) < 2):
        return set(allowed)
    if spec == "auto":
        return set(allowed) - {min(allowed)}
    wanted: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"{part!r} is not a CPU number or range (such as 1-3)")
        wanted.update(range(int(low), int(high or low) + 1))
    chosen = wanted & allowed
    if not chosen:
        raise ValueError(f"{spec!r} names none of this machine's CPUs {sorted(allowed)}")
    return chosen


def bulk_cpus() -> set[int]:
    """The CPUs bulk work runs on: ``TRANSPARENCY_BULK_CPUS`` (validated by Settings), by
    default every CPU but one. Linux only; elsewhere an empty set (no pinning)."""
    if not hasattr(os, "sched_getaffinity"):
        return set()
    allowed = os.sched_getaffinity(0)
    try:
        return parse_cpus(os.environ.get(BULK_CPUS_VARIABLE, "auto"), allowed)
    except ValueError:
        return set(allowed)


def background() -> None:
    """Run this process (and what it starts) as bulk work: only on what CPU the API
    processes and PostgreSQL leave, and never on every core at once.

    Kept off one core (``bulk_cpus``): on this machine a claim woken while every core runs
    bulk work waited for it even at SCHED_IDLE (the claims' p99 rose 10x with a busy loop
    on each of 2 cores, not at all with both loops on one core). A core that bulk work
    never takes is where the scheduler puts a claim's wake-up at once.

    SCHED_IDLE, not just a nice value: a niced process keeps the core it is on until the
    scheduler's next decision, and each claim wakes two processes in turn (its API process,
    its PostgreSQL backend), each of which may wait so. A SCHED_IDLE one is preempted by
    any ordinary process the moment that wakes (bench_faults.py: a hostile import raised
    the claims' p99 6.7x from a job process at nice 10, 4.3x at SCHED_IDLE). It still runs
    whenever a core is free, and keeps a sliver of CPU on a saturated machine. Linux only;
    elsewhere a nice value.
    """
    _idle_priority()


def _idle_priority() -> None:
    """The calling thread (and what it starts later) at nice 10 and SCHED_IDLE, on the
    bulk CPUs; Linux sets all three per thread. Already there (inherited from a spawner
    thread): no change."""
    me = threading.get_native_id()
    # Pinned once, by the first bulk thread: a job's pool worker or a decoder inherits its
    # parent's bulk CPUs, and "auto" taken again from those would drop one more each time.
    # A public API process runs SCHED_IDLE at nice 0, on every CPU (``below_stations``):
    # its own bulk threads are pinned still.
    if not _is_bulk() and (cpus := bulk_cpus()):
        with suppress(OSError):
            os.sched_setaffinity(0, cpus)
    with suppress(OSError):  # what stays if SCHED_IDLE is not to be had
        os.setpriority(os.PRIO_PROCESS, me, max(10, os.getpriority(os.PRIO_PROCESS, me)))
    _sched_idle()


def _sched_idle() -> None:
    """The calling thread (and the threads and processes it starts) at SCHED_IDLE; Linux
    only, elsewhere no change."""
    with suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _is_bulk() -> bool:
    """Whether the calling thread already runs as bulk work (inherited from a bulk parent):
    SCHED_IDLE at nice 10 or more."""
    try:
        idle = os.sched_getscheduler(0) == os.SCHED_IDLE
        return idle and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) >= 10
    except (AttributeError, OSError):
        return False


def below_stations() -> None:
    """Run this process as a public API process beside stations' own (``serve`` with a
    station port): SCHED_IDLE, so it runs only on CPU that the stations' API processes and
    PostgreSQL leave, and is preempted the moment one of them wakes; but on every CPU, at
    its own nice, and level with bulk work. Its bulk threads (``bulk_step``, the spawner of
    decoders and renderers) are pinned to the bulk CPUs as in any API process.

    SCHED_IDLE rather than a nice value, for the reason ``background`` gives: four clients
    posting refused photos in a loop to API processes at nice 10 raised the claims' p99
    1.3-3.6x (median 1.9x of five pairs), and 1.0-1.3x (median 1.2x) at SCHED_IDLE
    (bench_faults.py, same session). Called before the process starts any thread: a thread
    inherits its creator's policy. Linux only; elsewhere a no-op."""
    _sched_idle()


# Killable workers are started from this thread, which runs SCHED_IDLE: a process inherits
# the policy of the thread that forks it, so a new decoder's interpreter start and imports
# (a fifth of a second of CPU, paid again after every decoder killed at its time limit)
# already yield to the API processes, and the fork is not the event loop's to wait for.
_SPAWNER = ThreadPoolExecutor(1, thread_name_prefix="spawner", initializer=_idle_priority)
# A request's own bulk steps (an upload's deflate and hash) run on this thread, as bulk
# work runs everywhere: SCHED_IDLE, on the bulk CPUs. From a plain thread, a file of
# serials cost the claims' core 10 ms of deflate a megabyte (zlib level 1 on random serials;
# 1.3 ms on bench_faults.py's file of one serial), at the claims' own priority.
_BULK_STEPS = ThreadPoolExecutor(1, thread_name_prefix="bulk", initializer=_idle_priority)


async def bulk_step(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` on the API process's bulk thread (SCHED_IDLE, on the
    bulk CPUs); for C work that lets go of the GIL, so the event loop runs meanwhile."""
    call = partial(function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_BULK_STEPS, call)


def name_process(name: bytes) -> None:
    """What ps and top show for this process (/proc/self/comm, 15 bytes at most)."""
    try:
        with open("/proc/self/comm", "wb") as comm:
            comm.write(name[:15])
    except OSError:  # not Linux
        pass


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
        initializer=_pool_worker,
        initargs=(os.getpid(),),
    )


def in_turn(function: Callable[..., T], *args: Any) -> T:
    """In a bulk worker: ``function(*args)`` while holding a bulk turn (turns.py)."""
    with turns().turn():
        return function(*args)


def _pool_worker(parent: int) -> None:
    die_with_parent(parent)
    # Bulk work wherever the pool was started (the job process is already, an app running
    # its jobs in-process is not), and on the bulk CPUs: as many turns as they are.
    background()
    # Ctrl-C reaches the whole process group: a worker interrupted in the pool's queue
    # printed a KeyboardInterrupt trace at every `make serve` stop. The pool stops it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LazyPool:
    """A process pool started on first use (spawning costs a second) and shut at exit."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = process_pool(self.workers)
        return self._pool

    def shutdown(self, *, kill: bool = False) -> None:
        """Let the workers go once their tasks are done, or (``kill``) at once: a process
        exits only after its pool's workers have (multiprocessing joins them), and a worker
        busy with a task whose result nobody reads any more may never be done."""
        if self._pool is not None:
            # The executor's own table of its processes: no public way to end them.
            workers = list((self._pool._processes or {}).values())
            results = self._pool._result_queue
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            if kill:
                for worker in workers:
                    worker.kill()
                for worker in workers:
                    worker.join()
                # A worker killed while it wrote its result left half a message in the
                # results pipe, and the executor's thread reading it waits for the rest,
                # for ever: this process then never exits (its exit joins that thread; a
                # killed job process's parent waited 30 s, then its test failed). With the
                # last writer gone, the read ends (EOF) and the thread sees a broken pool.
                # This process never writes results; its copy only served new workers.
                if results is not None:
                    cast(Any, results)._writer.close()


class PoolBusy(Exception):
    """Every worker is busy and as many tasks as the queue holds are already waiting, or
    the worker free for the task is still starting past the pool's ``start_wait``."""


class WorkerLost(Exception):
    """A task's worker died under it twice: the task itself is likely what kills it."""


class TaskFailed(Exception):
    """The task raised in its worker (a bug: tasks return their expected errors as values)."""


_READY = b"ready"


def _serve(conn: Connection, parent: int, warm: str | None) -> None:
    """A worker's life: import ``warm``, say it is ready, then answer one task at a time,
    a pickled (function, args) in, a pickled (ok, value) out."""
    die_with_parent(parent)
    # Ctrl-C reaches the whole process group; the pool stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A photo's decoding yields the cores to the API processes and PostgreSQL: on a busy
    # machine a station's claim must not wait behind somebody's photo (bench_faults.py:
    # hostile photos at equal priority raised the claims' p99 about 7 times).
    background()
    if warm is not None:
        in_turn(importlib.import_module, warm)  # its imports are a fifth of a second of CPU
    conn.send_bytes(_READY)
    while True:
        try:
            message = conn.recv_bytes()
        except EOFError:  # the pool let go of us
            return
        function, args = pickle.loads(message)  # noqa: S301 (from the pool that spawned us)
        try:
            reply = pickle.dumps((True, in_turn(function, *args)), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # sent as text: not every exception unpickles
            reply = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
        conn.send_bytes(reply)


async def _send_bytes(fd: int, data: bytes) -> None:
    """``data`` framed as ``Connection.send_bytes`` frames it (a 4-byte big-endian length,
    then the bytes), written from the event loop as fast as the worker reads it: a task
    that fits the socket's buffer at once, a photo of megabytes a piece at a time.

    Not from a thread: a photo of 2 MB took about ten writes, each of which woke the
    thread and took the GIL from the event loop; from the loop it is ten callbacks."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    pieces = [memoryview(struct.pack("!i", len(view))), view]
    os.set_blocking(fd, False)
    try:
        for piece in pieces:
            while piece:
                try:
                    piece = piece[os.write(fd, piece) :]
                except BlockingIOError:
                    await _watched(fd, loop.add_writer, loop.remove_writer, None)
    finally:
        os.set_blocking(fd, True)


def _polled(fd: int) -> bool:
    """Whether ``fd`` can be read now (or its peer is gone), without waiting."""
    return bool(select.select([fd], [], [], 0)[0])


async def _readable(fd: int, limit: float | None) -> None:
    """Wait until ``fd`` can be read (or its peer is gone), at most ``limit`` seconds.

    ``fd`` is left blocking, as it was: uvloop (the served app's loop) makes a file
    non-blocking when it watches it, and a photo larger than the socket's buffer then
    failed to send with EAGAIN, was taken for a dead worker, and was answered 503 after
    two workers were killed and started again (every phone photo of a megabyte or more)."""
    loop = asyncio.get_running_loop()
    try:
        await _watched(fd, loop.add_reader, loop.remove_reader, limit)
    finally:
        os.set_blocking(fd, True)


async def _watched(
    fd: int,
    watch: Callable[..., object],
    unwatch: Callable[[int], object],
    limit: float | None,
) -> None:
    """Until the loop's ``watch`` (add_reader or add_writer) reports ``fd`` ready, at most
    ``limit`` seconds."""
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    watch(fd, wake)
    try:
        async with asyncio.timeout(limit):
            await ready
    finally:
        unwatch(fd)


class _Died(Exception):
    """The worker's end of the socket closed: it is dead."""


class _Starting(Exception):
    """The worker has not said it is ready, and a task may not wait for it any longer."""


class _Worker:
    def __init__(self, warm: str | None) -> None:
        context = multiprocessing.get_context("spawn")  # not fork: we have threads and a loop
        ours, theirs = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(theirs, os.getpid(), warm), name="worker", daemon=True
        )

        def start() -> None:
            try:
                self.process.start()
            finally:
                theirs.close()  # the worker's end is the worker's alone: its death closes it

        loop = asyncio.get_running_loop()
        self.started = loop.run_in_executor(_SPAWNER, start)
        self.born = loop.time()
        self.conn = ours
        self.ready = False

    @property
    def running(self) -> bool:
        """Started, and not dead (a worker still being started counts as running)."""
        if not self.started.done():
            return True
        return self.started.exception() is None and self.process.is_alive()

    async def call(
        self, message: bytes, time_limit: float, start_limit: float, start_wait: float
    ) -> bytes:
        """Send a task, wait for its reply; TimeoutError past ``time_limit``, _Died if the
        worker dies or is not ready ``start_limit`` seconds after its spawn, _Starting if
        it is not ready ``start_wait`` seconds after it. Its start-up is not the task's
        time."""
        try:
            await self.started
        except OSError as exc:
            raise _Died(f"could not start: {exc}") from exc
        fd = self.conn.fileno()
        try:
            if not self.ready:
                await self._until_ready(fd, start_limit, start_wait)
                if self.conn.recv_bytes() != _READY:
                    raise _Died("spoke before it was ready")
                self.ready = True
            async with asyncio.timeout(time_limit):
                await _send_bytes(fd, message)
                await _readable(fd, None)
            return self.conn.recv_bytes()
        except TimeoutError:  # an OSError: keep it apart from a broken socket
            raise
        except (EOFError, OSError) as exc:
            raise _Died(str(exc)) from exc

    async def _until_ready(self, fd: int, start_limit: float, start_wait: float) -> None:
        """Wait for the worker's ready message until ``start_wait`` seconds after its spawn
        (a task that comes later only looks), then _Starting, or _Died past ``start_limit``.

        A worker runs as bulk work from its first instruction, so it starts only when the
        cores have time to spare. With every core busy at the claims' priority, a decoder
        replacing one killed at its time limit got no CPU to import, and each photo waited
        for it 60 s, twice (the task's retry): more than the phone's patience."""
        loop = asyncio.get_running_loop()
        wait = self.born + min(start_wait, start_limit) - loop.time()
        if wait > 0 and not _polled(fd):
            with suppress(TimeoutError):
                await _readable(fd, wait)
        if not _polled(fd):
            if loop.time() - self.born >= start_limit:
                raise _Died("never became ready")
            raise _Starting

    async def stop(self) -> None:
        """Kill the process and wait (briefly) until it is gone: its CPU is free again."""
        with suppress(Exception):  # one that could not start has nothing to stop
            await self.started
        if self.started.exception() is not None:
            self.conn.close()
            return
        with suppress(OSError, ValueError):
            self.process.kill()
        # Reaped in a thread: its end of the socket closes a moment before it can be.
        await asyncio.to_thread(self.process.join, 5.0)
        self.conn.close()

    def kill(self) -> None:
        """Kill the process without waiting (at shutdown, or found dead while idle); one
        still being started is killed once it has been."""
        if not self.started.done():
            self.started.add_done_callback(lambda _: self.kill())
            return
        if self.started.exception() is None:
            with suppress(OSError, ValueError):
                self.process.kill()
        self.conn.close()


class KillablePool:
    """Worker processes, started on first use, that run one task each at a time and can be
    killed: a task past its time limit has its process killed (the CPU is free the moment
    the caller hears of it) and replaced; a worker that dies is replaced and its task tried
    once more on another. A ProcessPoolExecutor can do neither: it cannot stop one task,
    and one dead worker breaks the whole pool for good.

    At most ``queue`` tasks wait for a free worker; the next one is refused at once
    (PoolBusy), so a flood costs the callers a refusal, not a growing wait. A worker not
    ready ``start_wait`` seconds after its spawn refuses its tasks (PoolBusy) and goes on
    starting; one not ready after ``start_limit`` is taken for dead and replaced.
    """

    def __init__(
        self,
        workers: int,
        queue: int,
        *,
        warm: str | None = None,
        start_limit: float = 60.0,
        start_wait: float = 60.0,
    ) -> None:
        self.workers = workers
        self.queue = queue
        self.warm = warm
        self.start_limit = start_limit
        self.start_wait = start_wait
        self._all: set[_Worker] = set()
        self._idle: list[_Worker] = []
        self._waiting: deque[asyncio.Future[_Worker]] = deque()

    def admit(self) -> None:
        """Raise PoolBusy if a task submitted now would be refused (a cheap early check)."""
        if self._all and not self._idle and len(self._waiting) >= self.queue:
            raise PoolBusy(f"{self.workers} workers busy and {len(self._waiting)} tasks waiting")

    async def run(self, function: Callable[..., T], *args: Any, time_limit: float) -> T:
        """``function(*args)`` in a worker; TimeoutError (its worker killed) past
        ``time_limit`` seconds, PoolBusy, WorkerLost, or TaskFailed if it raised."""
        message = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
        for attempt in range(2):
            worker = await self._acquire(queued=attempt == 0)
            try:
                reply = await worker.call(message, time_limit, self.start_limit, self.start_wait)
            except _Died:
                await self._replace(worker)
                continue
            except _Starting:
                self._release(worker)  # still starting: the next task looks again
                raise PoolBusy("the worker free for this task is still starting") from None
            except BaseException:  # past its time, or its caller gone: it may still be busy
                await asyncio.shield(self._replace(worker))
                raise
            self._release(worker)
            ok, value = pickle.loads(reply)  # noqa: S301 (from a worker we spawned)
            if not ok:
                raise TaskFailed(value)
            result: T = value
            return result
        raise WorkerLost("the worker died twice running this task")

    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._all if worker.process.pid is not None]

    def shutdown(self) -> None:
        for worker in self._all:
            worker.kill()
        for worker in self._all:
            if worker.started.done() and worker.started.exception() is None:
                worker.process.join(1)
        self._all.clear()
        self._idle.clear()

    async def _acquire(self, *, queued: bool = True) -> _Worker:
        """An idle worker, waiting for one if need be; ``queued``: refused (PoolBusy) when
        the queue is full (a retry is not: it was admitted once)."""
        if not self._all:
            for _ in range(self.workers):
                self._release(self._start())
        if self._idle:
            worker = self._idle.pop()
        else:
            if queued:
                self.admit()
            waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                worker = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed a worker, then cancelled
                    self._release(waiter.result())
                else:
                    self._waiting.remove(waiter)
                raise
        if not worker.running:  # died while idle (killed, out of memory)
            self._all.discard(worker)
            worker.kill()
            worker = self._start()
        return worker

    def _release(self, worker: _Worker) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _start(self) -> _Worker:
        worker = _Worker(self.warm)
        self._all.add(worker)
        return worker

    async def _replace(self, worker: _Worker) -> None:
        self._all.discard(worker)
        await worker.stop()
        self._release(self._start())
