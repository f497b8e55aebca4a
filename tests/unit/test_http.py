"""Each response leaves in one write, and a slow or surplus connection is refused: uvicorn's
own protocol over a transport that records."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from transparency.api.gate import HEAD_GATE, HeadGate
from transparency.api.metrics import Metrics
from transparency.api.ratelimit import RateLimiter
from transparency.serve.http import CoalescingHttpTools, Limits


class Recorder(asyncio.Transport):
    """What the connection's socket would have been asked to send, one entry per send."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False
        self.closing = asyncio.Event()

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.closed = True
        self.closing.set()

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def hello(_: Request) -> Response:
    return PlainTextResponse("hello", headers={"x-test": "1"})


async def chunks(_: Request) -> Response:
    async def parts() -> Any:
        for part in (b"one,", b"two,", b"three"):
            await asyncio.sleep(0.01)  # each part in a later turn of the loop
            yield part

    return StreamingResponse(parts(), media_type="text/csv")


async def echo(request: Request) -> Response:
    return PlainTextResponse(await request.body())


async def refuse(_: Request) -> Response:
    return PlainTextResponse("no", status_code=429)  # answered without reading the body


async def late_echo(request: Request) -> Response:
    await asyncio.sleep(0.5)  # the app takes its time before it asks for the body
    return PlainTextResponse(await request.body())


REACHED: list[str] = []  # what the app's customer-upload route was asked


async def customer_upload(request: Request) -> Response:
    REACHED.append(request.url.path)
    return PlainTextResponse("app")


APP = Starlette(
    routes=[
        Route("/v1/scans", customer_upload, methods=["POST"]),
        Route("/hello", hello, methods=["GET", "HEAD"]),
        Route("/chunks", chunks),
        Route("/echo", echo, methods=["POST"]),
        Route("/late-echo", late_echo, methods=["POST"]),
        Route("/refuse", refuse, methods=["POST"]),
    ]
)


async def exchange(request: bytes, settle: float = 0.1) -> Recorder:
    config = uvicorn.Config(APP, lifespan="off", log_config=None, server_header=False)
    config.load()
    protocol = CoalescingHttpTools(config, ServerState(), app_state={})
    transport = Recorder()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.sleep(settle)
    return transport


def head_and_body(data: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


async def test_a_response_is_one_send() -> None:
    sent = (await exchange(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")).sent
    assert len(sent) == 1
    lines, body = head_and_body(sent[0])
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"x-test: 1" in lines
    assert b"content-length: 5" in lines
    assert body == b"hello"


async def test_pipelined_requests_get_their_responses_in_order() -> None:
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    post = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    sent = b"".join((await exchange(request + post + request)).sent)
    bodies = [head_and_body(b"HTTP/1.1" + r)[1] for r in sent.split(b"HTTP/1.1")[1:]]
    assert bodies == [b"hello", b"abc", b"hello"]


async def test_a_head_response_and_a_closing_connection_are_sent_before_close() -> None:
    transport = await exchange(b"HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert transport.closed
    assert len(transport.sent) == 1
    lines, body = head_and_body(transport.sent[0])
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert body == b""


async def test_a_streamed_response_still_streams() -> None:
    sent = (await exchange(b"GET /chunks HTTP/1.1\r\nHost: x\r\n\r\n", settle=0.3)).sent
    assert len(sent) >= 3, sent  # parts made in later turns are not held back for the rest
    lines, body = head_and_body(b"".join(sent))
    assert b"transfer-encoding: chunked" in lines
    assert body == b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n"


async def test_100_continue_is_sent_before_the_body_is_awaited() -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    config = uvicorn.Config(APP, lifespan="off", log_config=None)
    config.load()
    protocol = CoalescingHttpTools(config, ServerState(), app_state={})
    transport = Recorder()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.sleep(0.05)
    assert transport.sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(b"abc")
    await asyncio.sleep(0.05)
    assert head_and_body(transport.sent[1])[1] == b"abc"


@pytest.mark.parametrize("piece", [b"x", bytearray(b"x"), memoryview(b"x")])
async def test_writes_of_any_bytes_type_are_sent(piece: Any) -> None:
    from transparency.serve.http import _Coalescing

    recorder = Recorder()
    transport = _Coalescing(recorder, asyncio.get_running_loop())
    transport.write(piece)
    transport.write(b"y")
    assert recorder.sent == []  # held until the end of this turn of the loop
    await asyncio.sleep(0)
    assert recorder.sent == [b"xy"]


async def test_every_way_of_writing_keeps_the_order_and_close_sends_first() -> None:
    from transparency.serve.http import _Coalescing

    recorder = Recorder()
    transport = _Coalescing(recorder, asyncio.get_running_loop())
    transport.write(b"a")
    transport.writelines([b"b", b"c"])
    transport.close()
    assert recorder.sent == [b"abc"]
    assert recorder.closed
    await asyncio.sleep(0)
    assert recorder.sent == [b"abc"]  # nothing more once closed


FAST = Limits(header_seconds=0.2, body_seconds=0.2, max_connections=100)


def connect(
    limits: Limits = FAST, state: ServerState | None = None, app_state: dict[str, Any] | None = None
) -> tuple[Any, Recorder]:
    config = uvicorn.Config(APP, lifespan="off", log_config=None, server_header=False)
    config.load()
    protocol = CoalescingHttpTools(
        config, state or ServerState(), app_state=app_state or {}, limits=limits
    )
    transport = Recorder()
    protocol.connection_made(transport)
    return protocol, transport


async def closed_within(transport: Recorder, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(transport.closing.wait(), seconds)
    return transport.closed


def problem_of(sent: list[bytes]) -> tuple[list[bytes], dict[str, Any]]:
    import json

    lines, body = head_and_body(b"".join(sent))
    assert b"content-type: application/problem+json" in lines, lines
    assert b"connection: close" in lines, lines
    parsed: dict[str, Any] = json.loads(body)
    return lines, parsed


async def test_a_head_that_never_completes_gets_408_and_is_closed() -> None:
    protocol, transport = connect()
    protocol.data_received(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # slowloris
    assert await closed_within(transport, 5)
    lines, body = problem_of(transport.sent)
    assert lines[0] == b"HTTP/1.1 408 Request Timeout"
    assert body["type"] == "/problems/request-timeout"


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    _, transport = connect()
    assert await closed_within(transport, 5)
    assert problem_of(transport.sent)[1]["status"] == 408


async def test_a_head_sent_a_byte_at_a_time_is_due_from_its_start() -> None:
    protocol, transport = connect()
    started = asyncio.get_running_loop().time()
    for byte in b"GET /hello HTTP/1.1\r\nHost: x\r\n":  # each byte well within 0.2 s
        if transport.closed:
            break
        protocol.data_received(bytes([byte]))
        await asyncio.sleep(0.02)
    assert await closed_within(transport, 5)
    assert asyncio.get_running_loop().time() - started < 2  # not 0.2 s per byte
    assert problem_of(transport.sent)[1]["status"] == 408


async def test_a_body_that_trickles_gets_408_and_the_app_sees_the_client_gone() -> None:
    protocol, transport = connect()
    protocol.data_received(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na")
    assert await closed_within(transport, 5)
    lines, body = problem_of(transport.sent)
    assert lines[0] == b"HTTP/1.1 408 Request Timeout"
    assert "body" in body["detail"]


async def test_a_prompt_client_keeps_its_connection_past_the_deadlines() -> None:
    protocol, transport = connect()
    protocol.data_received(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    protocol.data_received(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
    protocol.data_received(b"abc")
    await asyncio.sleep(0.6)  # three times the deadlines: keep-alive (5 s) is what applies
    assert not transport.closed
    sent = b"".join(transport.sent)
    assert sent.count(b"HTTP/1.1 200 OK") == 2
    assert sent.endswith(b"abc")


async def test_time_the_app_holds_the_body_back_is_not_the_clients() -> None:
    protocol, transport = connect()
    protocol.data_received(
        b"POST /late-echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    deadline = asyncio.get_running_loop().time() + 5
    while b"100 Continue" not in b"".join(transport.sent):  # asked for after the app's 0.5 s
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    assert not transport.closed
    protocol.data_received(b"abc")
    deadline = asyncio.get_running_loop().time() + 5
    while not b"".join(transport.sent).endswith(b"abc"):
        assert not transport.closed, transport.sent
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    assert b"HTTP/1.1 200 OK" in b"".join(transport.sent)


async def test_a_connection_past_the_limit_gets_503_and_is_closed() -> None:
    state = ServerState()
    limits = Limits(header_seconds=10, body_seconds=10, max_connections=2)
    held = [connect(limits, state) for _ in range(2)]
    _, refused = connect(limits, state)
    assert refused.closed
    lines, body = problem_of(refused.sent)
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"retry-after: 1" in lines
    assert body["type"] == "/problems/overloaded"
    for protocol, transport in held:  # those within the limit are served
        assert not transport.closed
        protocol.data_received(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.05)
    assert all(b"200 OK" in b"".join(transport.sent) for _, transport in held)
    for protocol, _ in held:
        protocol.connection_lost(None)


async def refused_upload(length: int, sent: int, chunked: bool = False) -> Recorder:
    """A POST to /refuse announcing ``length`` bytes of body, of which ``sent`` arrive
    before the app answers (without reading any)."""
    protocol, transport = connect(Limits(header_seconds=10, body_seconds=10))
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % length
    body = b"%x\r\n%s\r\n" % (sent, b"x" * sent) if chunked else b"x" * sent
    protocol.data_received(b"POST /refuse HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n" + body)
    deadline = asyncio.get_running_loop().time() + 5
    while b"no" not in b"".join(transport.sent):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    return transport


async def test_an_answer_before_a_large_body_is_read_closes_the_connection() -> None:
    """uvicorn read the rest of a body the app never asked for, to keep the connection:
    a client refused at once could make the process read all it sent, again and again."""
    transport = await refused_upload(2_000_000, 64 * 1024)
    lines, body = head_and_body(b"".join(transport.sent))
    assert lines[0] == b"HTTP/1.1 429 Too Many Requests"
    assert b"connection: close" in lines
    assert body == b"no"
    assert transport.closed


async def test_an_answer_before_a_chunked_body_is_read_closes_the_connection() -> None:
    transport = await refused_upload(0, 1024, chunked=True)
    assert b"connection: close" in head_and_body(b"".join(transport.sent))[0]
    assert transport.closed


async def test_an_answer_with_little_of_the_body_left_closes_the_connection_too() -> None:
    """A 256 KB line let four clients posting 300 KB photos have 250 KB of each read, 800
    refusals a second (bench_faults.py's hostile photos)."""
    transport = await refused_upload(300_000, 64 * 1024)
    lines, _ = head_and_body(b"".join(transport.sent))
    assert lines[0] == b"HTTP/1.1 429 Too Many Requests"
    assert b"connection: close" in lines
    assert transport.closed


async def test_an_answer_once_the_body_is_all_in_keeps_the_connection() -> None:
    transport = await refused_upload(2048, 2048)
    lines, _ = head_and_body(b"".join(transport.sent))
    assert lines[0] == b"HTTP/1.1 429 Too Many Requests"
    assert b"connection: close" not in lines
    assert not transport.closed


async def test_a_body_that_arrives_in_pieces_and_is_read_keeps_the_connection() -> None:
    protocol, transport = connect(Limits(header_seconds=10, body_seconds=10))
    protocol.data_received(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
    await asyncio.sleep(0.01)
    protocol.data_received(b"def")
    deadline = asyncio.get_running_loop().time() + 5
    while b"abcdef" not in b"".join(transport.sent):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    lines, body = head_and_body(b"".join(transport.sent))
    assert (lines[0], body) == (b"HTTP/1.1 200 OK", b"abcdef")
    assert b"connection: close" not in lines
    assert not transport.closed
    protocol.connection_lost(None)


# --- The head gate (api.gate) --------------------------------------------------------------

SPENT_PHOTO = b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n"


def gated(spent: bool = True) -> tuple[HeadGate, dict[str, Any]]:
    """A gate whose one client (the Recorder's peer) has ``spent`` its budget, or not."""
    limiter = RateLimiter(per_minute=1, burst=1)
    if spent:
        limiter.hit("127.0.0.1")
    gate = HeadGate(limiter, Metrics())
    return gate, {HEAD_GATE: gate}


async def test_a_request_the_gate_refuses_is_answered_from_its_head_alone() -> None:
    """Four clients past their budget posting photos in a loop took 700 µs of an API
    process for each refusal, through the app's whole stack: the claims' p99 rose 4.2x."""
    REACHED.clear()
    _, app_state = gated()
    protocol, transport = connect(app_state=app_state)
    # The head, some of the body and, in the same read, the start of another request.
    protocol.data_received(SPENT_PHOTO + b"\r\n" + b"x" * 65536 + b"GET /hello HTTP/1.1\r\n")
    assert transport.closed  # at once: no task was made for it
    assert len(transport.sent) == 1
    lines, body = problem_of(transport.sent)
    assert lines[0] == b"HTTP/1.1 429 Too Many Requests"
    assert b"retry-after: 60" in lines
    assert any(line.startswith(b"x-request-id: ") for line in lines)
    assert body["type"] == "/problems/rate-limited"
    await asyncio.sleep(0.05)
    assert REACHED == []  # the app never saw it
    assert len(transport.sent) == 1  # the rest of the read was dropped, not answered


async def test_a_request_pipelined_behind_a_refused_one_is_never_run() -> None:
    """Its connection closes with the refusal: a claim run there would never be answered."""
    REACHED.clear()
    _, app_state = gated()
    protocol, transport = connect(app_state=app_state)
    keyed = b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
    refused = SPENT_PHOTO.replace(b"300000", b"3") + b"\r\nabc"
    protocol.data_received(refused + keyed + b"Content-Length: 3\r\n\r\nabc")
    await asyncio.sleep(0.05)
    assert REACHED == []
    assert len(transport.sent) == 1
    assert head_and_body(transport.sent[0])[0][0] == b"HTTP/1.1 429 Too Many Requests"


async def test_the_gate_lets_through_what_it_does_not_refuse() -> None:
    REACHED.clear()
    _, app_state = gated()
    keyed = SPENT_PHOTO.replace(b"300000", b"3") + b"Authorization: Bearer k\r\n\r\nabc"
    other_path = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    for request in (keyed, other_path):  # a station's photo; not a customer upload
        protocol, transport = connect(app_state=app_state)
        protocol.data_received(request)
        await asyncio.sleep(0.05)
        lines, body = head_and_body(b"".join(transport.sent))
        assert lines[0] == b"HTTP/1.1 200 OK"
        assert body in (b"app", b"abc")
        protocol.connection_lost(None)
    assert REACHED == ["/v1/scans"]
    protocol, transport = connect(app_state=gated(spent=False)[1])  # the photo passes
    protocol.data_received(SPENT_PHOTO.replace(b"300000", b"3") + b"\r\nabc")
    await asyncio.sleep(0.05)
    lines, body = head_and_body(b"".join(transport.sent))
    assert (lines[0], body) == (b"HTTP/1.1 200 OK", b"app")
    assert REACHED == ["/v1/scans", "/v1/scans"]
    protocol.connection_lost(None)


async def test_a_request_pipelined_behind_an_unanswered_one_waits_for_the_app() -> None:
    """The gate answers only when nothing else is being answered on the connection: its
    answer would otherwise go out before the earlier request's."""
    REACHED.clear()
    _, app_state = gated()
    protocol, transport = connect(app_state=app_state)
    slow = b"POST /late-echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nslow"
    protocol.data_received(slow + SPENT_PHOTO.replace(b"300000", b"3") + b"\r\nabc")
    deadline = asyncio.get_running_loop().time() + 5
    while b"app" not in b"".join(transport.sent):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    sent = b"".join(transport.sent)
    assert sent.index(b"slow") < sent.index(b"app")
    assert REACHED == ["/v1/scans"]
    protocol.connection_lost(None)
