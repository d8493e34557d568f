"""The providers' own HTTP/1.1 transport under httpx, where it differs from httpx's: one write
a request, bodies however they are framed, ``connection: close`` and idle expiry, an answer
abandoned before its end, the connection limit, a garbled answer. What both transports do
alike (reuse, replacement, large bodies, streams, timeouts, refusals, resets, TLS) is tested
on both in ``test_network``."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from router.providers.http11 import Http11Transport
from router.providers.transport import provider_transport
from tests.router.providers.test_network import Server, _serve, echo

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: RawHandler) -> AsyncIterator[str]:
    """A server on loopback running ``handler`` on each connection; yields its URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def client(
    timeout: float | httpx.Timeout = 10.0,
    limits: httpx.Limits | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    transport = Http11Transport(limits or httpx.Limits(max_connections=4), ssl_context=ssl_context)
    return httpx.AsyncClient(transport=transport, timeout=timeout)


@pytest.fixture
async def echo_server() -> AsyncIterator[Server]:
    state, close = await _serve(echo)
    yield state
    close()


def test_it_is_the_default_transport() -> None:
    assert isinstance(provider_transport(httpx.Limits(), coalesce_writes=True), Http11Transport)


async def test_the_request_goes_out_in_one_write_with_its_head() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))  # one read: what arrived first
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async with raw_server(record) as url, client() as http:
        answered = await http.post(f"{url}/v1/x?q=a%20b", content=b"{}")
    assert answered.text == "ok"
    head, _, body = seen[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/x?q=a%20b HTTP/1.1\r\n")
    assert b"\r\nHost: %s" % url.removeprefix("http://").encode() in head
    assert b"\r\nContent-Length: 2" in head
    assert body == b"{}"


async def test_connection_close_and_idle_expiry_open_new_connections(echo_server: Server) -> None:
    async def closing(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nk")
        await writer.drain()
        return True  # the server would go on; the client must not

    state, close = await _serve(closing)
    try:
        async with client() as http:
            for _ in range(2):
                assert (await http.get(state.url)).text == "k"
        assert state.connections == 2
    finally:
        close()
    expiring = httpx.Limits(max_connections=4, keepalive_expiry=0.05)
    async with client(limits=expiring) as http:
        await http.post(echo_server.url, content=b"a")
        await asyncio.sleep(0.15)
        await http.post(echo_server.url, content=b"b")
    assert echo_server.connections == 2


async def test_bodies_however_framed_come_back_whole() -> None:
    framings = {
        b"/length": b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"/chunks": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        b"/empty": b"HTTP/1.1 204 No Content\r\n\r\n",
        b"/early": b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"/close": b"HTTP/1.1 200 OK\r\n\r\nhello",  # ends at the close
    }

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            path = head.split(b" ")[1]
            writer.write(framings[path])
            await writer.drain()
            if path == b"/close":
                break
        writer.close()

    async with raw_server(answer) as url, client() as http:
        for path, text in (("/length", "hello"), ("/chunks", "hello"), ("/empty", "")):
            assert (await http.get(f"{url}{path}")).text == text
        early = await http.get(f"{url}/early")  # an informational answer, then the answer
        assert (early.status_code, early.text, "link" in early.headers) == (200, "hello", False)
        assert (await http.get(f"{url}/close")).text == "hello"
        assert (await http.get(f"{url}/length")).text == "hello"


async def test_a_streamed_body_without_a_length_goes_out_chunked() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(record) as url, client() as http:
        assert (await http.post(f"{url}/", content=pieces())).is_success
    assert seen[0].endswith(b"\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")


async def test_an_answer_closed_before_its_end_closes_its_connection() -> None:
    async def endless(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(0.3)
        return False

    state, close = await _serve(endless)
    try:
        async with client() as http:
            async with http.stream("POST", state.url, content=b"{}") as response:
                async for block in response.aiter_bytes():
                    assert block == b"first"
                    break
            async with http.stream("POST", state.url, content=b"{}") as response:
                assert response.status_code == 200
        assert state.connections == 2
    finally:
        close()


async def test_the_connection_limit_makes_a_caller_wait_up_to_its_pool_timeout() -> None:
    release = asyncio.Event()

    async def slow(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        await echo(body, writer)
        return True

    state, close = await _serve(slow)
    try:
        limits = httpx.Limits(max_connections=1)
        async with client(timeout=httpx.Timeout(10, pool=0.1), limits=limits) as http:
            first = asyncio.create_task(http.post(state.url, content=b"1"))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await http.post(state.url, content=b"2")
            waiting = asyncio.create_task(
                http.post(state.url, content=b"3", timeout=httpx.Timeout(10))
            )
            await asyncio.sleep(0.05)
            release.set()
            assert (await first).content == b"1"
            assert (await waiting).content == b"3"
        assert state.connections == 1
    finally:
        close()


async def test_a_garbled_answer_is_a_protocol_error() -> None:
    async def garbled(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        return False

    state, close = await _serve(garbled)
    try:
        async with client() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post(state.url, content=b"{}")
    finally:
        close()


async def test_a_waiter_woken_then_cancelled_passes_the_room_on(echo_server: Server) -> None:
    """With one connection held and two callers waiting, the one woken by its release but
    cancelled before it ran leaves the connection to the other."""
    async with client(
        timeout=httpx.Timeout(5, pool=None), limits=httpx.Limits(max_connections=1)
    ) as http:
        holding = await http.send(
            http.build_request("POST", echo_server.url, content=b"a"), stream=True
        )
        first = asyncio.create_task(http.post(echo_server.url, content=b"b"))
        second = asyncio.create_task(http.post(echo_server.url, content=b"c"))
        await asyncio.sleep(0.05)
        await holding.aread()
        await holding.aclose()  # wakes the first waiter ...
        first.cancel()  # ... which goes away before it runs
        assert (await asyncio.wait_for(second, 2)).content == b"c"


async def test_bytes_after_the_answer_do_not_change_it() -> None:
    async def two_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            b"HTTP/1.1 500 Oops\r\ncontent-length: 3\r\n\r\nbad"
        )
        await writer.drain()
        await reader.read()
        writer.close()

    async with raw_server(two_answers) as url, client() as http:
        answered = await http.get(url)
        assert (answered.status_code, answered.text) == (200, "ok")
        assert http._transport._idle_count == 0  # type: ignore[attr-defined]  # not reused


async def test_a_closed_transport_refuses_new_requests(echo_server: Server) -> None:
    """Also a caller that was waiting for a connection when it closed (no pool timeout)."""
    transport = Http11Transport(httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, pool=None)) as http:
        holding = await http.send(
            http.build_request("POST", echo_server.url, content=b"a"), stream=True
        )
        waiting = asyncio.create_task(http.post(echo_server.url, content=b"b"))
        await asyncio.sleep(0.05)
        await transport.aclose()
        with pytest.raises(httpx.ConnectError, match="closed"):
            await asyncio.wait_for(waiting, 2)
        await holding.aclose()
        with pytest.raises(httpx.ConnectError, match="closed"):
            await http.post(echo_server.url, content=b"c")
