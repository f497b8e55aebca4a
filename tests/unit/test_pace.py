"""runtime/pace.py: bytes past the burst wait for the pace; readers sharing it queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from transparency.runtime.pace import BytePace


class Clock:
    """Time that moves only when a reader sleeps: the waits are exact, not timed."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pace(clock: Clock, rate: float = 1000, burst: int = 500) -> BytePace:
    return BytePace(rate, burst, clock=clock, sleep=clock.sleep)


async def test_the_burst_passes_at_once_and_the_rest_at_the_rate() -> None:
    clock = Clock()
    paced = pace(clock)
    for _ in range(5):
        await paced.take(100)
    assert clock.slept == []  # 500 bytes: the burst
    await paced.take(250)
    assert clock.slept == [pytest.approx(0.25)]
    for _ in range(4):
        await paced.take(1000)
    assert clock.now == pytest.approx(100 + 4.25)  # 4,750 bytes past the burst at 1,000/s


async def test_a_quiet_spell_earns_the_burst_back_and_no_more() -> None:
    clock = Clock()
    paced = pace(clock)
    await paced.take(2500)
    assert clock.now == pytest.approx(102.0)
    clock.now += 60  # a minute with no reads
    await paced.take(500)
    assert clock.now == pytest.approx(162.0)  # within the burst: no wait
    await paced.take(500)
    assert clock.now == pytest.approx(162.5)  # not a minute's worth of credit


async def test_readers_sharing_a_pace_wait_in_the_order_they_asked() -> None:
    paced = BytePace(1_000_000, 0)
    done: list[str] = []

    async def read(name: str, size: int) -> None:
        await paced.take(size)
        done.append(name)

    # 200 ms reserved by the first, then 1 ms by the second: it waits behind the first.
    await asyncio.gather(read("large", 200_000), read("small", 1_000))
    assert done == ["large", "small"]


async def test_paced_hands_on_every_chunk() -> None:
    clock = Clock()

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(4):
            yield bytes([n]) * 400

    got = [chunk async for chunk in pace(clock).paced(chunks())]
    assert got == [bytes([n]) * 400 for n in range(4)]
    assert clock.now == pytest.approx(101.1)  # 1,600 bytes, 500 of them the burst


def test_a_pace_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        BytePace(0, 10)
