"""uvicorn's HTTP/1.1 protocol (httptools), with each response written in one piece, and
read deadlines and a connection limit that uvicorn lacks.

uvicorn writes a response's status line and headers, then its body, with a write each, and
uvloop sends each write at once: two send() calls, and two TCP segments, per response. A
profile of an API process refusing forged scans showed a fifth of its time in those two
calls. Here the writes made during one turn of the event loop are held and sent together
at its end (or as soon as the connection closes), which is one send() per response.

uvicorn times a connection out only between requests (keep-alive): one that connects and
sends nothing, or half a header line, or a body a byte at a time, held its connection (and
its file descriptor, and any request task waiting for the body) for as long as it liked:
80 s and more in the audit, and a few thousand such connections exhaust a process's file
descriptors. Here, as nginx's ``client_header_timeout`` and Apache's ``mod_reqtimeout`` do,
a request's line and headers must arrive within ``Limits.header_seconds`` (of the
connection's start, for its first request), and its body within ``Limits.body_seconds``
plus a second for every ``MIN_BODY_RATE`` bytes received (so a large upload at a decent rate
is never cut, and a trickle is); past either, the client gets a 408 problem and the
connection is closed. Time the server itself holds the body back (reading paused, or a
``100 Continue`` not yet sent) does not count. A process accepts ``Limits.max_connections``
connections; one more gets a 503 problem (with Retry-After) and is closed at once.

A request answered while any of its body is still to come (a 429 or a 413 given from its
head) has its connection closed after the answer, which says so; uvicorn would read the
whole body to keep the connection for the next request.

A request its head alone refuses (``api.gate``: a customer upload whose sender is past its
budget) is answered as soon as its head is in, before any task is made for it or any of
its body is read, and its connection closed; nothing after it on that connection runs.

Each request's scope carries one extension of ours (``api.deps.SEND_BUFFER``): a response
drawn slowly by bulk work (a label file) caps what the kernel holds of it unsent, so a
client that stops reading stops the work, and its connection closes after it.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.responses import Response
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from transparency.api.deps import SEND_BUFFER
from transparency.api.gate import HEAD_GATE
from transparency.api.problems import problem
from transparency.domain.errors import Overloaded, RequestTimeout, TransparencyError

# A body must average at least this (bytes a second) after its first body_seconds: a slow
# mobile uplink of 1 Mbit/s sends 125 kB/s, a tenth of it still passes.
MIN_BODY_RATE = 10_000


class _Coalescing:
    """A connection's transport whose writes within one turn of the loop go out together."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(bytes(data))

    def _flush(self) -> None:
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a connection may take: seconds for a request's head and body, and how many
    connections a process holds at once."""

    header_seconds: float = 10.0
    body_seconds: float = 30.0
    max_connections: int = 900


_HEAD, _BODY = "head", "body"


class CoalescingHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol over a transport that sends a response's writes in one piece, with
    read deadlines and a connection limit (see the module's docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: Limits = Limits(),  # frozen: one default shared by all is safe
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._reading: str | None = None  # the part of a request still arriving, if any
        self._since = 0.0  # when that part began (loop time)
        self._received = 0  # body bytes received so far
        self._deadline: asyncio.TimerHandle | None = None
        self._watched: Any = None  # the last request whose answer may close (_close_if_unread)
        self._gated = False  # a request's head was answered: the parser's rest is ignored
        # The app's head gate, if it has one: its lifespan has run before any connection.
        self._gate = app_state.get(HEAD_GATE)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]
        if len(self.connections) > self.limits.max_connections:
            self._refuse(Overloaded("this process holds as many connections as it accepts"))
            return
        self._begin(_HEAD)  # the first request's head is due from the connection's start
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # A request whose body is still to come once this read is parsed: its task has not
        # run yet, so its answer is watched from its start. Most bodies arrive whole with
        # their head, and their requests pass here untouched.
        if self._reading == _BODY and self._watched is not self.cycle:
            self._close_if_unread(self.cycle)
        # Most requests arrive whole in one read: only one left incomplete needs a timer.
        if self._reading is not None and self._deadline is None:
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._reading is None:  # else the connection's first request: due from its start
            self._begin(_HEAD)

    def on_headers_complete(self) -> None:
        # A request after one the gate answered, in the same read: its connection is
        # closing, and no task may act on what it could never be told of.
        if self._gated or self._at_gate():
            return
        super().on_headers_complete()
        # After super(), which made the request's cycle (its scope is this same dict) and
        # whose task has not run yet.
        self.scope.setdefault("extensions", {})[SEND_BUFFER] = {
            "set": partial(self._slow_response, self.cycle)
        }
        self._begin(_BODY)

    def on_body(self, body: bytes) -> None:
        if self._gated:
            return
        super().on_body(body)
        self._received += len(body)

    def on_message_complete(self) -> None:
        if self._gated:
            return
        super().on_message_complete()
        self._reading = None
        self._disarm()

    def _at_gate(self) -> bool:
        """Whether the app's head gate (``api.gate``) answered the request whose head just
        arrived: then it was answered, and the connection closes, before any task or any of
        its body. A request behind one still being answered (pipelined) waits its turn."""
        if self._gate is None or (self.cycle is not None and not self.cycle.response_complete):
            return False
        peer = self.client[0] if self.client else None
        answer = self._gate(self.parser.get_method(), self.url, self.headers, peer)
        if answer is None:
            return False
        self._gated = True
        self._reading = None
        self._disarm()
        self._send_closing(answer)
        self.transport.close()
        return True

    def _slow_response(self, cycle: Any, size: int) -> None:
        """Cap the kernel's buffer for ``cycle``'s response at ``size`` (SO_SNDBUF), and
        close the connection after it: a socket keeps a cap for good (Linux stops tuning
        its buffer), and the next response on it may be a large file for a distant client."""
        cycle.keep_alive = False
        self.transport.set_write_buffer_limits(high=size // 2)  # and little held here
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def _close_if_unread(self, cycle: Any) -> None:
        """Have ``cycle``'s answer close the connection if it starts while any of the
        request's body is still to come.

        uvicorn reads the rest of a body the app never asked for, to keep the connection for
        the next request. A client refused at once (429, 413) could so make the process read
        and parse all it sent: four clients posting 2 MB photos in a loop, each refused at
        once, took three quarters of an API core, and the stations' claim p99 rose 4x. Past
        a 256 KB line (Go's net/http's) the same four posting 300 KB photos, 800 refusals a
        second, still had each one's last 250 KB read: the claims' p99 3.0-4.9x, against
        2.8-3.8x closing at any unread byte (bench_faults.py, alternating). The answer says
        ``Connection: close`` and the kernel drops what is left unread; a refused client
        connects again, as it would after any error.
        """
        self._watched = cycle
        send = cycle.send

        async def send_closing(message: Any) -> None:
            if message["type"] == "http.response.start" and self._unread(cycle):
                cycle.keep_alive = False  # uvicorn adds Connection: close, and closes after
            await send(message)

        cycle.send = send_closing

    def _unread(self, cycle: Any) -> bool:
        """Whether any of ``cycle``'s body is still to come (else the parser went on, or
        finished it)."""
        return cycle is self.cycle and self._reading == _BODY

    def _begin(self, part: str) -> None:
        self._reading, self._since, self._received = part, self.loop.time(), 0

    def _due(self) -> float:
        if self._reading == _HEAD:
            return self._since + self.limits.header_seconds
        return self._since + self.limits.body_seconds + self._received / MIN_BODY_RATE

    def _arm(self) -> None:
        self._deadline = self.loop.call_at(self._due(), self._check)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _check(self) -> None:
        self._deadline = None
        if self._reading is None or self.transport.is_closing():
            return
        cycle = self.cycle
        if self.flow.read_paused or (
            self._reading == _BODY and cycle is not None and cycle.waiting_for_100_continue
        ):
            # The server holds the request back (the app has not read what came, or has not
            # asked for the body yet, or a pipelined request waits its turn): the client's
            # time starts again from here.
            self._since, self._received = self.loop.time(), 0
        elif self.loop.time() >= self._due():
            part = "headers" if self._reading == _HEAD else "body"
            self._refuse(RequestTimeout(f"the request's {part} did not arrive in time"))
            return
        self._arm()

    def _refuse(self, error: TransparencyError) -> None:
        """Answer ``error`` as a problem where no response is under way, and close."""
        cycle = self.cycle
        if cycle is None:
            free = True
        elif self._reading == _BODY:  # the cycle is this request's: nothing sent yet?
            free = not cycle.response_started
        else:  # a new request's head: the last one must be answered (not pipelined)
            free = cycle.response_complete
        self._reading = None
        self._disarm()
        if free:
            self._send_closing(problem(error))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() answers http.disconnect
            cycle.message_event.set()
        self.transport.close()

    def _send_closing(self, response: Response) -> None:
        """Write ``response`` whole, saying the connection closes after it."""
        head = [STATUS_LINE[response.status_code]]
        for name, value in [*self.server_state.default_headers, *response.raw_headers]:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + response.body)
