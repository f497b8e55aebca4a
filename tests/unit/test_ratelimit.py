"""The customer rate limit: one budget per client, in one process or shared by several."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transparency.api.ratelimit import RateLimiter, SharedBuckets
from transparency.domain.errors import RateLimited


def allowed(limiter: RateLimiter, client: str, now: float) -> bool:
    try:
        limiter.hit(client, now)
    except RateLimited:
        return False
    return True


def test_processes_sharing_the_file_share_each_clients_budget(tmp_path: Path) -> None:
    path = str(tmp_path / "buckets")
    first = RateLimiter(60, 3, SharedBuckets(path))
    second = RateLimiter(60, 3, SharedBuckets(path))  # as another process maps it
    hits = [allowed(limiter, "203.0.113.7", 100.0) for limiter in (first, second) * 2]
    assert hits == [True, True, True, False]
    assert allowed(first, "198.51.100.1", 100.0)  # another client, its own budget
    with pytest.raises(RateLimited) as refused:
        second.hit("203.0.113.7", 100.0)
    assert refused.value.extra["retry_after"] == 1  # a token a second comes back
    assert allowed(second, "203.0.113.7", 101.0)


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 5)), min_size=1, max_size=60)
)
def test_shared_buckets_decide_as_the_in_process_ones(hits: list[tuple[str, float]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        shared = SharedBuckets(f"{directory}/buckets")
        alone, together = RateLimiter(30, 4), RateLimiter(30, 4, shared)
        now = 0.0
        for client, gap in hits:
            now += gap
            assert allowed(alone, client, now) == allowed(together, client, now)
        shared.close()


def _spend(path: str, tries: int, start: Barrier, out: multiprocessing.Queue[int]) -> None:
    limiter = RateLimiter(1, 500, SharedBuckets(path))
    start.wait(30)  # all at once, racing for the same slot
    out.put(sum(allowed(limiter, "192.0.2.9", 1000.0) for _ in range(tries)))


def test_concurrent_processes_never_overspend(tmp_path: Path) -> None:
    path = str(tmp_path / "buckets")
    SharedBuckets(path).close()
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = context.Queue()
    start = context.Barrier(4)
    workers = [context.Process(target=_spend, args=(path, 2000, start, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    granted = sum(out.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(30)
    assert granted == 500  # the burst, exactly, across four processes racing for it


def test_clients_spread_over_every_slot_by_a_secret_hash(tmp_path: Path) -> None:
    """Every slot is used (a key forced odd once left half of them idle), and where a client
    lands depends on the file's random salt, so no one can choose two that collide."""
    clients = [f"198.51.{n // 256}.{n % 256}" for n in range(2000)]
    first = SharedBuckets(str(tmp_path / "first"), slots=16)
    second = SharedBuckets(str(tmp_path / "second"), slots=16)
    assert {first.slot_of(c) for c in clients} == set(range(16))
    assert [first.slot_of(c) for c in clients] != [second.slot_of(c) for c in clients]
    again = SharedBuckets(str(tmp_path / "first"), slots=16)  # another process: same salt
    assert [again.slot_of(c) for c in clients] == [first.slot_of(c) for c in clients]
