"""A token bucket per client address, for the customer endpoints only.

One API process keeps its buckets in a dict. Several processes on one machine (serve with
TRANSPARENCY_WORKERS) share them through a file they all map (``SharedBuckets``), so a
client's budget is the same whichever process its connections reach. Instances behind a
load balancer on other machines still count apart: their limit adds up.

A client is its address as ``ipaddress`` reads it, not as it is spelled: ``2001:DB8::77``,
``2001:db8::77`` and ``::ffff:192.0.2.1`` for an IPv4 client are one budget each, and IPv6
is counted per /64, the block RFC 6177 hands a single site (one host alone gets 2^64
addresses, so a /128 budget is no limit at all). Only a peer in the trusted proxies may name
another client address, in X-Forwarded-For.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import math
import mmap
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from transparency.domain.errors import CustomerChecksBusy, RateLimited

# Set by `serve` for its API processes: the file their SharedBuckets map.
SHARED_FILE_ENV = "TRANSPARENCY_CUSTOMER_BUCKETS"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDRs (``10.0.0.0/8, ::1``); ValueError naming a bad one."""
    found = []
    for item in text.split(","):
        if item.strip():
            try:
                found.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{item.strip()!r} is not an address or a CIDR") from None
    return tuple(found)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]
) -> str:
    """The client's budget key: its address normalised (IPv6: its /64).

    A peer in ``trusted`` is a proxy: X-Forwarded-For is read right to left (each proxy
    appends the address it saw), trusted hops skipped, and the first other address is the
    client. Entries left of an unparsable one were never vouched for: the last trusted hop
    stands for the client then, so no spelling can buy a fresh budget.
    """
    address = _address(peer) if peer is not None else None
    if address is None:
        return "unknown" if peer is None else peer  # a Unix socket: one budget for all
    if trusted and any(address in net for net in trusted):
        hops = [hop for header in forwarded_for for hop in header.split(",")]
        for hop in reversed(hops):
            found = _address(hop)
            if found is None:
                break
            address = found
            if not any(address in net for net in trusted):
                break
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _spend(
    tokens: float, at: float, now: float, rate: float, burst: float, cost: float = 1
) -> tuple[float, float]:
    """A bucket's tokens at ``now`` (refilled since ``at``), and what it keeps after a
    request: ``cost`` tokens less, or all of them if there were not enough to take."""
    held = min(burst, tokens + (now - at) * rate)
    return held, held - cost if held >= cost else held


class LocalBuckets:
    """The buckets of one API process, least recently used first.

    Past ``max_clients`` the client seen longest ago is forgotten (it starts again with a
    full bucket): a flood of new addresses costs the memory of 100,000 buckets (about 25 MB)
    and never frees the clients being limited right now, as clearing them all once did.
    """

    def __init__(self, max_clients: int = 100_000) -> None:
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float, rate: float, burst: float, cost: float = 1) -> float:
        """Take ``cost`` tokens; the tokens held before (under ``cost``: refused, none taken)."""
        found = self._buckets.get(client)
        if found is not None:
            self._buckets.move_to_end(client)
        elif len(self._buckets) >= self.max_clients:
            self._buckets.popitem(last=False)
        tokens, at = found or (burst, now)
        held, left = _spend(tokens, at, now, rate, burst, cost)
        self._buckets[client] = (left, now)
        return held

    def close(self) -> None:
        pass


class SharedBuckets:
    """Buckets in a file mapped by every API process: a fixed table of slots, each a client's
    key, tokens and time, read and written under a lock on that slot's bytes.

    A client's slot comes from a hash keyed with a random salt the file's creator wrote, so
    nobody can pick two addresses that share a slot. Two clients that happen to share one
    take it from each other, each starting again with a full bucket: bounded memory beats
    perfect accounting, as for the dict.
    """

    _SLOT = struct.Struct("<Qdd")  # key, tokens, when (CLOCK_MONOTONIC: one per machine)
    _SALT = 16  # bytes at the start of the file

    def __init__(self, path: str, slots: int = 65_536) -> None:
        self.slots = slots
        size = self._SALT + slots * self._SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.lockf(self._fd, fcntl.LOCK_EX)  # the first process to open it writes the salt
        try:
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)  # zeros: every slot empty
                os.pwrite(self._fd, os.urandom(self._SALT), 0)
            self._salt = os.pread(self._fd, self._SALT, 0)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(self._fd, size)

    def take(self, client: str, now: float, rate: float, burst: float, cost: float = 1) -> float:
        """As ``LocalBuckets.take``, under the slot's lock."""
        hashed = self._hash(client)
        key = hashed | 1  # never 0, the empty slot
        offset = self._SALT + (hashed % self.slots) * self._SLOT.size
        fcntl.lockf(self._fd, fcntl.LOCK_EX, self._SLOT.size, offset)
        try:
            owner, tokens, at = self._SLOT.unpack_from(self._map, offset)
            if owner != key:
                tokens, at = burst, now
            held, left = _spend(tokens, at, now, rate, burst, cost)
            self._SLOT.pack_into(self._map, offset, key, left, now)
            return held
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, self._SLOT.size, offset)

    def slot_of(self, client: str) -> int:
        return self._hash(client) % self.slots

    def _hash(self, client: str) -> int:
        digest = hashlib.blake2b(client.encode(), digest_size=8, key=self._salt).digest()
        return int.from_bytes(digest, "little")

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class RateLimiter:
    """Each client's budget, and (``process_rate``) the process's own for all clients.

    A flood from many addresses spends no client's budget twice, so per-client limits alone
    let it take every core: bench_faults.py's customer flood raised the stations' claim p99
    about ninefold. The process's budget is checked first and sheds what is past it at the
    cost of a refusal (503, Retry-After), before any client's token is taken or any query
    made: the load shedding payment APIs do for their less critical requests, so that
    fulfilment keeps its share of the machine.
    """

    def __init__(
        self,
        per_minute: int,
        burst: int,
        buckets: LocalBuckets | SharedBuckets | None = None,
        trusted_proxies: tuple[Network, ...] = (),
        process_rate: float = 0,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.buckets = buckets if buckets is not None else LocalBuckets()
        self.trusted_proxies = trusted_proxies
        self.process_rate = float(process_rate)
        # A second's worth at once: a burst of scans after a quiet spell is answered whole.
        self._process = (self.process_rate, 0.0)

    def client_of(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The budget key of a request from ``peer`` (see ``client_address``)."""
        return client_address(peer, forwarded_for, self.trusted_proxies)

    def hit(
        self,
        client: str | Callable[[], str],
        now: float | None = None,
        tokens: int = 1,
        *,
        spend: bool = True,
    ) -> None:
        """Take ``tokens`` (all or none) for ``client`` or raise RateLimited with the
        seconds to wait (more than the burst never fit: the wait is then for a full bucket).
        With ``spend`` false it only raises what taking them would raise (``api.gate``).

        ``client`` may be a function that gives the key: it is called only for a check the
        process's budget admits. Reading a client's address (``client_address``) was a
        fifth of what a shed check cost in bench_faults.py's flood, where nine checks in ten
        are shed."""
        moment = time.monotonic() if now is None else now
        # The process's budget is looked at first and spent last (nothing awaits between):
        # a check it sheds takes nothing of its client's budget, and a client refused for
        # its own excess takes nothing of everybody's.
        room = 0.0
        if self.process_rate:
            room, at = self._process
            room = min(self.process_rate, room + (moment - at) * self.process_rate)
            if room < tokens:
                self._process = (room, moment)
                raise CustomerChecksBusy(
                    f"this API process answers {self.process_rate:g} customer checks a second;"
                    " retry shortly",
                    retry_after=1,
                )
        key = client if isinstance(client, str) else client()
        # Taking none leaves a bucket as it was: refilled to now, which is the same budget.
        held = self.buckets.take(key, moment, self.rate, self.burst, tokens if spend else 0)
        if held < tokens:
            wait = math.ceil((min(tokens, self.burst) - held) / self.rate)
            raise RateLimited("too many checks from this address; retry later", retry_after=wait)
        if self.process_rate and spend:
            self._process = (room - tokens, moment)
