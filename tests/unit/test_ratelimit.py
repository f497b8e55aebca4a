"""The customer rate limit: one budget per client, in one process or shared by several."""

from __future__ import annotations

import ipaddress
import multiprocessing
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transparency.api.ratelimit import LocalBuckets, RateLimiter, SharedBuckets, networks
from transparency.domain.errors import CustomerChecksBusy, RateLimited
from transparency.runtime.settings import Settings


def allowed(limiter: RateLimiter, client: str, now: float) -> bool:
    try:
        limiter.hit(client, now)
    except (RateLimited, CustomerChecksBusy):
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


def spent_after(limiter: RateLimiter, peers: list[tuple[str, list[str]]]) -> list[bool]:
    """Whether each request, from (peer, X-Forwarded-For headers), was allowed."""
    return [allowed(limiter, limiter.client_of(peer, hops), 50.0) for peer, hops in peers]


def test_spellings_of_one_client_share_its_budget() -> None:
    limiter = RateLimiter(1, 3)
    spellings = ["2001:db8::77", "2001:DB8::77", "2001:0db8:0:0:0:0:0:0077", "2001:db8::77"]
    assert spent_after(limiter, [(s, []) for s in spellings]) == [True, True, True, False]
    mapped = ["192.0.2.1", "::ffff:192.0.2.1", "::FFFF:c000:0201", "192.0.2.1"]
    assert spent_after(limiter, [(s, []) for s in mapped]) == [True, True, True, False]


def test_an_ipv6_client_is_its_slash_64() -> None:
    """One host alone holds 2^64 addresses; a budget per /128 would be no limit at all."""
    limiter = RateLimiter(1, 2)
    same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:abcd::9"]
    assert spent_after(limiter, [(s, []) for s in same_64]) == [True, True, False]
    assert spent_after(limiter, [("2001:db8:1:3::1", [])]) == [True]  # the next /64


def test_an_untrusted_peer_cannot_name_another_client() -> None:
    limiter = RateLimiter(1, 2)  # no trusted proxies: loopback is a client like any other
    forged = [("127.0.0.1", [f"198.51.100.{n}"]) for n in range(3)]
    assert spent_after(limiter, forged) == [True, True, False]
    outside = RateLimiter(1, 2, trusted_proxies=networks("10.0.0.0/8"))
    forged = [("203.0.113.5", [f"198.51.100.{n}"]) for n in range(3)]
    assert spent_after(outside, forged) == [True, True, False]


def test_a_trusted_proxy_names_the_client_right_to_left() -> None:
    limiter = RateLimiter(1, 1, trusted_proxies=networks("10.0.0.0/8, ::1"))
    # Each proxy appends the address it saw: the client wrote the left part, the right is ours.
    assert limiter.client_of("10.0.0.2", ["6.6.6.6, 198.51.100.7, 10.1.1.1"]) == "198.51.100.7"
    assert limiter.client_of("::1", ["6.6.6.6", "2001:DB8::1"]) == "2001:db8::/64"
    assert limiter.client_of("10.0.0.2", ["::ffff:198.51.100.7"]) == "198.51.100.7"
    # Nothing parsable past a trusted hop: the last trusted hop stands for the client.
    assert limiter.client_of("10.0.0.2", ["198.51.100.7, evil"]) == "10.0.0.2"
    assert limiter.client_of("10.0.0.2", ["", "nonsense"]) == "10.0.0.2"
    assert limiter.client_of("10.0.0.2", []) == "10.0.0.2"
    # Every spelling a client could send for itself through the proxy is one budget.
    sent = [("10.0.0.2", [f"{address}"]) for address in ("2001:db8::5", "2001:db8::6")]
    assert spent_after(limiter, sent) == [True, False]


def test_trusted_proxies_are_addresses_or_cidrs() -> None:
    assert networks(" 10.0.0.0/8 ,::1,192.0.2.7") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1"),
        ipaddress.ip_network("192.0.2.7"),
    )
    assert networks("") == ()
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        networks("10.0.0.300")
    with pytest.raises(pydantic.ValidationError, match="not an address or a CIDR"):
        Settings(trusted_proxies="localhost")


def test_a_flood_of_new_addresses_evicts_the_oldest_not_everyone() -> None:
    """Past its size the dict forgets the client seen longest ago: the clients being limited
    right now stay limited however many new addresses an attacker sends from."""
    limiter = RateLimiter(1, 2, LocalBuckets(max_clients=100))
    assert spent_after(limiter, [("192.0.2.1", [])] * 3) == [True, True, False]
    for n in range(1000):
        limiter.hit(f"198.51.{n // 256}.{n % 256}", 50.0)
        if n % 50 == 0:  # the limited client keeps trying, and stays refused
            assert not allowed(limiter, "192.0.2.1", 50.0)
    assert not allowed(limiter, "192.0.2.1", 50.0)
    assert allowed(limiter, "198.51.0.0", 50.0)  # forgotten long ago: a full bucket again


@pytest.mark.parametrize("shared", [False, True])
def test_several_tokens_are_taken_all_or_none(tmp_path: Path, shared: bool) -> None:
    buckets = SharedBuckets(str(tmp_path / "buckets")) if shared else None
    limiter = RateLimiter(60, 5, buckets)
    limiter.hit("192.0.2.1", 100.0, tokens=3)  # a photo of three codes
    with pytest.raises(RateLimited) as refused:
        limiter.hit("192.0.2.1", 100.0, tokens=3)  # two left: none taken
    assert refused.value.extra["retry_after"] == 1
    limiter.hit("192.0.2.1", 100.0, tokens=2)
    assert not allowed(limiter, "192.0.2.1", 100.0)
    with pytest.raises(RateLimited):
        limiter.hit("192.0.2.2", 100.0, tokens=6)  # more than the burst never fits


def test_past_the_process_budget_any_client_is_shed_before_its_own_budget_is_touched() -> None:
    limiter = RateLimiter(per_minute=1, burst=3, process_rate=5)
    now = 1000.0
    for n in range(5):  # five clients, a check each: the process's second is spent
        limiter.hit(f"192.0.2.{n}", now)
    with pytest.raises(CustomerChecksBusy) as busy:
        limiter.hit("192.0.2.99", now)  # a fresh client, with its whole burst, all the same
    assert busy.value.extra == {"retry_after": 1}
    # A second later the process has room again, and the refused client still has its
    # whole burst of three: the refusal took nothing of it.
    for _ in range(3):
        limiter.hit("192.0.2.99", now + 1)
    with pytest.raises(RateLimited):
        limiter.hit("192.0.2.99", now + 1)


def test_a_shed_check_never_reads_its_client_address() -> None:
    """Nine checks in ten of a flood are shed: reading each one's address (ipaddress, the
    trusted-proxy hops) was a fifth of what a shed check cost."""
    limiter = RateLimiter(per_minute=60, burst=20, process_rate=1)
    read: list[str] = []

    def client(name: str) -> Callable[[], str]:
        def key() -> str:
            read.append(name)
            return name

        return key

    limiter.hit(client("first"), 10.0)
    with pytest.raises(CustomerChecksBusy):
        limiter.hit(client("shed"), 10.0)
    assert read == ["first"]


def test_a_client_refused_for_its_own_excess_spends_nothing_of_the_process_budget() -> None:
    limiter = RateLimiter(per_minute=1, burst=3, process_rate=5)
    assert [allowed(limiter, "198.51.100.1", 7.0) for _ in range(50)] == [True] * 3 + [False] * 47
    assert [allowed(limiter, f"192.0.2.{n}", 7.0) for n in range(4)] == [True, True, False, False]


def test_the_process_budget_refills_at_its_rate_and_holds_a_second_at_most() -> None:
    limiter = RateLimiter(per_minute=10**9, burst=10**9, process_rate=100)
    answered = sum(allowed(limiter, f"c{n}", 50.0) for n in range(500))
    assert answered == 100  # a second's worth at once
    later = sum(allowed(limiter, f"d{n}", 50.5) for n in range(500))
    assert later == 50  # half a second refills half
    idle = sum(allowed(limiter, f"e{n}", 3600.0) for n in range(500))
    assert idle == 100  # an hour idle stores no more than a second


def test_no_process_budget_when_it_is_zero() -> None:
    limiter = RateLimiter(per_minute=10**9, burst=10**9, process_rate=0)
    assert all(allowed(limiter, f"c{n}", 1.0) for n in range(10_000))
