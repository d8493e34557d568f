"""The providers' connections under httpx, on the asyncio network backend and on the router's
own HTTP/1.1 (``router.providers.http11``): real HTTP over loopback (plain and TLS),
kept-alive connections reused and replaced when the server closes them, large bodies both
ways, and httpx's own errors for timeouts, refused connections and resets."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from router.providers.http11 import Http11Transport
from router.providers.network import READ_HIGH_WATER, AsyncioBackend, AsyncioStream
from router.providers.transport import HeadWithBodyBackend, provider_transport

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Answers one request (its body given); returns False to close the connection after."""


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return await reader.readexactly(length)


async def _serve(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> tuple[Server, Callable[[], None]]:
    state = Server(url="")

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while (body := await _read_request(reader)) is not None:
                state.requests.append(body)
                if not await handler(body, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    state.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}"
    return state, server.close


async def echo(body: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    return True


@pytest.fixture
async def echo_server() -> AsyncIterator[Server]:
    state, close = await _serve(echo)
    yield state
    close()


@pytest.fixture(params=["asyncio", "httptools"])
def network(request: pytest.FixtureRequest) -> str:
    """httpx's transport on the asyncio network, or the router's own HTTP/1.1."""
    name: str = request.param
    return name


def client(
    timeout: float = 10.0, verify: ssl.SSLContext | bool = True, network: str = "asyncio"
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=4)
    if network == "httptools":
        context = verify if isinstance(verify, ssl.SSLContext) else None
        return httpx.AsyncClient(
            transport=Http11Transport(limits, ssl_context=context), timeout=timeout
        )
    transport = httpx_transport(limits, coalesce_writes=True)
    if verify is not True:  # a test's own certificate authority
        transport = httpx.AsyncHTTPTransport(verify=verify)
        transport._pool._network_backend = AsyncioBackend()
    return httpx.AsyncClient(transport=transport, timeout=timeout)


def httpx_transport(
    limits: httpx.Limits, *, coalesce_writes: bool, network: str = "asyncio"
) -> httpx.AsyncHTTPTransport:
    """The providers' transport on one of httpx's networks."""
    transport = provider_transport(limits, coalesce_writes=coalesce_writes, network=network)
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    return transport


def test_the_transport_runs_on_the_chosen_network() -> None:
    limits = httpx.Limits(max_connections=2)
    coalescing = httpx_transport(limits, coalesce_writes=True)
    assert isinstance(coalescing._pool._network_backend, HeadWithBodyBackend)
    assert isinstance(coalescing._pool._network_backend._inner, AsyncioBackend)
    assert isinstance(
        httpx_transport(limits, coalesce_writes=False)._pool._network_backend, AsyncioBackend
    )
    anyio = httpx_transport(limits, coalesce_writes=False, network="anyio")
    assert not isinstance(anyio._pool._network_backend, AsyncioBackend)
    with pytest.raises(ValueError, match="network must be one of httptools, asyncio, anyio"):
        provider_transport(limits, coalesce_writes=False, network="trio")


async def test_requests_are_answered_over_one_kept_alive_connection(
    echo_server: Server, network: str
) -> None:
    async with client(network=network) as http:
        for n in range(5):
            posted = await http.post(f"{echo_server.url}/v1/chat/completions", json={"n": n})
            assert posted.json() == {"n": n}
    assert echo_server.connections == 1
    assert echo_server.requests == [b'{"n":%d}' % n for n in range(5)]


async def test_a_connection_the_server_closed_is_replaced(network: str) -> None:
    async def answer_once(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await echo(body, writer)
        return False  # closed without saying so (no "connection: close")

    state, close = await _serve(answer_once)
    try:
        async with client(network=network) as http:
            for n in range(3):
                posted = await http.post(state.url, content=b"x%d" % n)
                assert posted.content == b"x%d" % n
                await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert state.connections == 3
    finally:
        close()


async def test_large_bodies_go_out_and_come_back_whole(echo_server: Server, network: str) -> None:
    body = bytes(range(256)) * (8 * READ_HIGH_WATER // 256)  # 2 MiB: flow control both ways
    async with client(network=network) as http:
        echoed = await http.post(echo_server.url, content=body)
    assert echoed.content == body


async def test_a_streamed_answer_arrives_chunk_by_chunk(network: str) -> None:
    async def stream(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for n in range(5):
            event = b"data: %d\n\n" % n
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    state, close = await _serve(stream)
    try:
        async with (
            client(network=network) as http,
            http.stream("POST", state.url, content=b"{}") as response,
        ):
            lines = [line async for line in response.aiter_lines() if line]
        assert lines == [f"data: {n}" for n in range(5)]
    finally:
        close()


async def test_a_silent_server_is_a_read_timeout(network: str) -> None:
    async def silent(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    state, close = await _serve(silent)
    try:
        async with client(timeout=0.2, network=network) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(state.url, content=b"{}")
    finally:
        close()


async def test_a_refused_connection_is_a_connect_error(network: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(network=network) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_a_reset_in_the_middle_of_an_answer_is_an_error(network: str) -> None:
    async def reset(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST, not FIN
        return False

    state, close = await _serve(reset)
    try:
        async with client(network=network) as http:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await http.post(state.url, content=b"{}")
    finally:
        close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test certificate; it is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


async def test_tls_is_negotiated_and_the_certificate_checked(
    certificate: tuple[Path, Path], network: str
) -> None:
    key, cert = certificate
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    state, close = await _serve(echo, tls=serving)
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        async with client(verify=trusting, network=network) as http:
            for n in range(2):
                posted = await http.post(state.url, content=b"secret %d" % n)
                assert posted.content == b"secret %d" % n
        assert state.connections == 1
        async with client(
            network=network
        ) as http:  # the system's authorities do not know this certificate
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.post(state.url, content=b"{}")
    finally:
        close()


class RecordingBackend(AsyncioBackend):
    """The asyncio backend, keeping each connection's stream."""

    def __init__(self) -> None:
        self.streams: list[AsyncioStream] = []

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await super().connect_tcp(*args, **kwargs)
        assert isinstance(stream, AsyncioStream)
        self.streams.append(stream)
        return stream


async def test_a_connection_given_up_is_released_at_once() -> None:
    """A request that could not be written in time (the server stopped reading) closes its
    connection at once: the unsent body is dropped, not kept waiting to drain."""
    stall = asyncio.Event()

    async def reads_the_head_only(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await stall.wait()
        writer.close()

    server = await asyncio.start_server(reads_the_head_only, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = RecordingBackend()
    transport = httpx.AsyncHTTPTransport()
    transport._pool._network_backend = backend

    async def body() -> AsyncIterator[bytes]:
        for _ in range(512):  # 32 MiB: far more than the socket buffers hold
            yield b"x" * 65536

    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(10, write=0.3)
        ) as http:
            with pytest.raises(httpx.WriteTimeout):
                await http.post(f"http://127.0.0.1:{port}/", content=body())
            await asyncio.sleep(0.2)
            assert backend.streams[0]._protocol.lost  # the socket is closed, nothing held
    finally:
        stall.set()
        server.close()
