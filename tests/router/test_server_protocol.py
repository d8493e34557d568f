"""The service's HTTP protocol sends what a response writes in one loop turn with one write,
sends it by the end of that turn, keeps the bytes in order, and serves real HTTP unchanged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from router.server_protocol import CoalescingHttpToolsProtocol, CoalescingTransport, http_protocol
from router.settings import Settings
from tests.router.threaded_server import threaded_server


class RecordingTransport(asyncio.Transport):
    """A transport that records its writes and whether it was closed or aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0


@pytest.fixture
def inner() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
async def transport(inner: RecordingTransport) -> CoalescingTransport:
    return CoalescingTransport(inner, asyncio.get_running_loop())


async def test_writes_of_one_turn_go_out_together_at_its_end(
    transport: CoalescingTransport, inner: RecordingTransport
) -> None:
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next turn")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"next turn"]


async def test_closing_sends_what_is_held_first_and_aborting_drops_it(
    transport: CoalescingTransport, inner: RecordingTransport
) -> None:
    transport.write(b"last words")
    transport.close()
    assert (inner.writes, inner.closed) == ([b"last words"], True)
    transport.write(b"too late")  # the peer is gone: nothing is sent
    await asyncio.sleep(0)
    assert inner.writes == [b"last words"]

    other = RecordingTransport()
    aborting = CoalescingTransport(other, asyncio.get_running_loop())
    aborting.write(b"dropped")
    aborting.abort()
    await asyncio.sleep(0)
    assert (other.writes, other.aborted) == ([], True)


async def test_it_answers_for_the_socket_it_wraps(transport: CoalescingTransport) -> None:
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    assert transport.get_extra_info("sockname", "none") == "none"
    assert not transport.is_closing()


def test_the_protocol_follows_the_setting() -> None:
    assert http_protocol(Settings(coalesce_writes=True)) is CoalescingHttpToolsProtocol
    assert http_protocol(Settings(coalesce_writes=False)) == "httptools"


def stream_app() -> FastAPI:
    app = FastAPI()
    released: list[asyncio.Event] = []

    @app.post("/json")
    async def echo(body: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"echo": body}, headers={"x-kind": "json"})

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        release = asyncio.Event()
        released.append(release)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            await asyncio.wait_for(release.wait(), 10)  # until the client saw the first
            yield b"second\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.post("/release")
    async def release() -> JSONResponse:
        released.pop().set()
        return JSONResponse({})

    @app.get("/close")
    async def close() -> JSONResponse:
        return JSONResponse({"bye": True}, headers={"connection": "close"})

    return app


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_real_http_through_the_protocol(loop: Literal["asyncio", "uvloop"]) -> None:
    config = uvicorn.Config(
        stream_app(), port=0, log_level="warning", http=CoalescingHttpToolsProtocol, loop=loop
    )
    with (
        threaded_server(config, "coalescing") as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        for n in range(3):  # one kept-alive connection
            answered = client.post("/json", json={"n": n})
            assert answered.json() == {"echo": {"n": n}}
            assert answered.headers["x-kind"] == "json"
        big = {"text": "x" * 300_000}  # past uvicorn's high-water mark: reading pauses
        assert client.post("/json", json=big).json() == {"echo": big}
        with client.stream("GET", "/stream") as streamed:
            lines = streamed.iter_lines()
            assert next(lines) == "first"  # sent before the handler produced the second
            assert httpx.post(f"{url}/release", timeout=10).status_code == 200
            assert list(lines) == ["second"]
        closing = client.get("/close")
        assert (closing.json(), closing.headers["connection"]) == ({"bye": True}, "close")
        assert client.post("/json", json={"after": "close"}).json() == {"echo": {"after": "close"}}


def test_a_complete_response_leaves_before_the_work_after_it() -> None:
    """The answer goes out when its last body message is sent, not when the loop turn ends:
    a background task that holds the loop (here for 0.5 s) comes after the client has it."""
    app = FastAPI()
    finished: list[float] = []

    async def hold_the_loop() -> None:  # no await: the loop turn lasts until it returns
        time.sleep(0.5)  # noqa: ASYNC251 - holding the loop is the point
        finished.append(time.monotonic())

    @app.get("/answer")
    async def answer() -> JSONResponse:
        return JSONResponse({"ok": True}, background=BackgroundTask(hold_the_loop))

    config = uvicorn.Config(app, port=0, log_level="warning", http=CoalescingHttpToolsProtocol)
    with (
        threaded_server(config, "complete") as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        assert client.get("/answer").json() == {"ok": True}
        received = time.monotonic()
        assert not finished  # the background task still holds the server's loop
        deadline = time.monotonic() + 5
        while not finished and time.monotonic() < deadline:
            time.sleep(0.01)
        assert finished
        assert finished[0] > received
