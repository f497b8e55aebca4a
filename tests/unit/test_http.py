"""Each response leaves in one write: uvicorn's own protocol over a transport that records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from transparency.serve.http import CoalescingHttpTools


class Recorder(asyncio.Transport):
    """What the connection's socket would have been asked to send, one entry per send."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.closed = True

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


APP = Starlette(
    routes=[
        Route("/hello", hello, methods=["GET", "HEAD"]),
        Route("/chunks", chunks),
        Route("/echo", echo, methods=["POST"]),
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
