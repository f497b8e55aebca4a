"""Bulk turns (runtime/turns.py): no more bulk tasks run at once than there are turns,
across processes; a dead holder's turn comes back; a task waiting on its pipes holds none."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from tests.support.paths import ROOT
from tests.support.pool_tasks import interval
from transparency.runtime.turns import TURNS_VARIABLE, Turns, bulk_cpu_count
from transparency.runtime.workers import KillablePool


def _waiting_take(turns: Turns) -> threading.Thread:
    taker = threading.Thread(target=turns.take, daemon=True)
    taker.start()
    return taker


def test_no_more_turns_are_held_at_once_than_there_are(tmp_path: Path) -> None:
    # Each Turns opens its own files, and flock is per open file: these three contend as
    # three processes would.
    first, second, third = (Turns(tmp_path, 2) for _ in range(3))
    assert first.take(wait=False)
    assert second.take(wait=False)
    assert not third.take(wait=False)
    taker = _waiting_take(third)
    taker.join(0.2)
    assert taker.is_alive()  # asleep until a turn is given back
    first.give_back()
    second.give_back()
    taker.join(10)
    assert not taker.is_alive()
    assert third.held


def test_a_turn_released_around_a_wait_is_free_meanwhile(tmp_path: Path) -> None:
    mine, other = Turns(tmp_path, 1), Turns(tmp_path, 1)
    with mine.turn():
        assert not other.take(wait=False)
        with mine.released():
            assert other.take(wait=False)
            other.give_back()
        assert not other.take(wait=False)  # taken again on leaving
    assert other.take(wait=False)


def _blocked_on(path: Path) -> bool:
    """Whether some process (or thread) waits in flock for the file at ``path``."""
    inode = f":{path.stat().st_ino} "
    locks = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and inode in line for line in locks)


def test_a_holder_taking_its_turn_again_at_once_goes_behind_a_waiter(tmp_path: Path) -> None:
    """A label render gives its turn back around each write and takes it again at once:
    a process already waiting must get the turn first. Without doors the holder won it back
    before the waiter woke, and a render kept every decode and render waiting for minutes
    (a stalled-download test's second label file waited past its 30 s)."""
    holder, waiter = Turns(tmp_path, 1), Turns(tmp_path, 1)
    ran: list[str] = []

    def wait_then_run() -> None:
        waiter.take()
        ran.append("waiter")
        waiter.give_back()

    assert holder.take(wait=False)
    taker = threading.Thread(target=wait_then_run, daemon=True)
    taker.start()
    deadline = time.monotonic() + 10
    while not _blocked_on(tmp_path / "turn-0"):
        assert time.monotonic() < deadline, "the waiter never waited for the turn"
        time.sleep(0.01)
    holder.give_back()
    holder.take()
    assert ran == ["waiter"]  # it ran in between, and holds nothing now
    holder.give_back()
    taker.join(10)


_HOLDER = """
import sys, time
from pathlib import Path
from transparency.runtime.turns import Turns
turns = Turns(Path(sys.argv[1]), 1)
turns.take()
print("held", flush=True)
time.sleep(600)
"""


def test_a_holder_killed_with_kill_9_gives_its_turn_back(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            mine = Turns(tmp_path, 1)
            assert not mine.take(wait=False)
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            taker = _waiting_take(mine)
            taker.join(10)
            assert mine.held
        finally:
            holder.kill()


async def test_decoders_take_turns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One more decoder than there are bulk turns, each given a task at once: no more of
    them ran at once than there are turns. Three or four decoders busy at once on one bulk
    CPU raised the claims' p99 3.5x (bench_faults.py's hostile photos), one at a time 1.5x."""
    monkeypatch.setenv(TURNS_VARIABLE, str(tmp_path))
    probe = KillablePool(1, 0)
    try:
        count = await probe.run(bulk_cpu_count, time_limit=30)  # a decoder's bulk CPUs
    finally:
        probe.shutdown()
    pool = KillablePool(count + 1, 0)
    try:
        await asyncio.gather(
            *(pool.run(str.upper, "warm", time_limit=60) for _ in range(count + 1))
        )
        spans = await asyncio.gather(
            *(pool.run(interval, 0.3, time_limit=60) for _ in range(count + 1))
        )
    finally:
        pool.shutdown()
    moments = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in moments:  # an end at the very instant of a start counts first: not at once
        running += step
        most = max(most, running)
    assert most <= count, spans


def test_a_label_render_whose_client_stops_reading_holds_no_turn(tmp_path: Path) -> None:
    """The renderer draws only in its turn, and gives the turn back while its output waits
    for a reader: a stalled label download must not keep the decoders and jobs waiting."""
    label = ["https://example.test/v/" + "A" * 40, "A" * 40, "qr", "", []]
    mine = Turns(tmp_path, 1)
    mine.take()
    with subprocess.Popen(
        [sys.executable, "-m", "transparency.labels.worker", "0"],  # on CPU 0: one turn
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, TURNS_VARIABLE: str(tmp_path)},
    ) as worker:  # fmt: skip
        assert worker.stdin is not None
        assert worker.stdout is not None
        header = {"kind": "png.zip", "layout": {}, "call_to_action": "Scan"}
        feeding = threading.Thread(
            target=_feed, args=(worker.stdin, header, label, 600), daemon=True
        )
        feeding.start()
        waiting, _, _ = select.select([worker.stdout], [], [], 1.0)
        assert not waiting  # nothing drawn while the turn is ours
        mine.give_back()
        assert worker.stdout.read(2) == b"PK"  # its turn: it draws
        deadline = time.monotonic() + 60
        # Its output is no longer read: once the pipe is full it waits, its turn free.
        while not mine.take(wait=False):
            assert time.monotonic() < deadline, "the stalled renderer kept its turn"
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.05)
        assert worker.poll() is None  # still there, waiting for its reader
        mine.give_back()
        rest = worker.stdout.read()  # read again: it takes a turn again and finishes
        assert worker.wait(60) == 0
        assert len(rest) > 100_000


def _feed(stdin: IO[bytes], header: dict[str, object], label: list[object], count: int) -> None:
    line = json.dumps(label).encode() + b"\n"
    try:
        stdin.write(json.dumps(header).encode() + b"\n")
        for _ in range(count):
            stdin.write(line)
        stdin.close()
    except BrokenPipeError:
        pass
