"""The providers' own HTTP/1.1 transport under httpx: real HTTP over loopback (plain and TLS),
kept-alive connections reused and replaced, bodies however they are framed, flow control
both ways, the connection limit, and httpx's own errors for timeouts, refusals and resets."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from router.providers.http11 import READ_HIGH_WATER, Http11Transport
from router.providers.transport import provider_transport
from tests.router.providers.test_network import Server, _serve, certificate, echo

__all__ = ["certificate"]  # a fixture used here


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


async def test_requests_are_answered_over_one_kept_alive_connection(echo_server: Server) -> None:
    async with client() as http:
        for n in range(5):
            posted = await http.post(f"{echo_server.url}/v1/chat/completions?x=1", json={"n": n})
            assert posted.status_code == 200
            assert posted.json() == {"n": n}
    assert echo_server.connections == 1
    assert echo_server.requests == [b'{"n":%d}' % n for n in range(5)]


async def test_the_request_goes_out_in_one_write_with_its_head() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))  # one read: what arrived first
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client() as http:
            answered = await http.post(f"http://127.0.0.1:{port}/v1/x?q=a%20b", content=b"{}")
        assert answered.text == "ok"
        head, _, body = seen[0].partition(b"\r\n\r\n")
        assert head.startswith(b"POST /v1/x?q=a%20b HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:%d" % port in head
        assert b"\r\nContent-Length: 2" in head
        assert body == b"{}"
    finally:
        server.close()


async def test_a_connection_the_server_closed_is_replaced() -> None:
    async def answer_once(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await echo(body, writer)
        return False  # closed without saying so (no "connection: close")

    state, close = await _serve(answer_once)
    try:
        async with client() as http:
            for n in range(3):
                posted = await http.post(state.url, content=b"x%d" % n)
                assert posted.content == b"x%d" % n
                await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert state.connections == 3
    finally:
        close()


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

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client() as http:
            for path, text in (("/length", "hello"), ("/chunks", "hello"), ("/empty", "")):
                assert (await http.get(f"http://127.0.0.1:{port}{path}")).text == text
            assert (await http.get(f"http://127.0.0.1:{port}/close")).text == "hello"
            assert (await http.get(f"http://127.0.0.1:{port}/length")).text == "hello"
    finally:
        server.close()


async def test_a_streamed_body_without_a_length_goes_out_chunked(echo_server: Server) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client() as http:
            assert (await http.post(f"http://127.0.0.1:{port}/", content=pieces())).is_success
        assert seen[0].endswith(b"\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
    finally:
        server.close()


async def test_large_bodies_go_out_and_come_back_whole(echo_server: Server) -> None:
    body = bytes(range(256)) * (8 * READ_HIGH_WATER // 256)  # 2 MiB: flow control both ways
    async with client() as http:
        echoed = await http.post(echo_server.url, content=body)
    assert echoed.content == body


async def test_a_streamed_answer_arrives_as_it_is_sent() -> None:
    async def stream(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for n in range(5):
            event = b"data: %d\n\n" % n
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    state, close = await _serve(stream)
    try:
        async with client() as http, http.stream("POST", state.url, content=b"{}") as response:
            blocks = [block async for block in response.aiter_bytes()]
            assert b"".join(blocks) == b"".join(b"data: %d\n\n" % n for n in range(5))
            assert len(blocks) >= 3  # handed over as they came, not at the end
    finally:
        close()


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


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    state, close = await _serve(silent)
    try:
        async with client(timeout=0.2) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(state.url, content=b"{}")
    finally:
        close()


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_a_reset_or_a_garbled_answer_is_an_error() -> None:
    async def reset(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST, not FIN
        return False

    async def garbled(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        return False

    for handler in (reset, garbled):
        state, close = await _serve(handler)
        try:
            async with client() as http:
                with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                    await http.post(state.url, content=b"{}")
        finally:
            close()


async def test_tls_is_negotiated_and_the_certificate_checked(
    certificate: tuple[Path, Path],
) -> None:
    key, cert = certificate
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    state, close = await _serve(echo, tls=serving)
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        async with client(ssl_context=trusting) as http:
            for n in range(2):
                posted = await http.post(state.url, content=b"secret %d" % n)
                assert posted.content == b"secret %d" % n
        assert state.connections == 1
        async with client() as http:  # the default authorities do not know this certificate
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.post(state.url, content=b"{}")
    finally:
        close()
