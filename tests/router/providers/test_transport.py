"""The providers' transport sends a request's head together with its body, keeps the bytes in
order, and still works over real HTTP."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from router.providers.transport import HeadWithBodyBackend, HeadWithBodyStream, provider_transport
from tests.router.providers.test_network import httpx_transport

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n"


class RecordingStream(httpcore.AsyncNetworkStream):
    """A network stream that records what is done to it, in order."""

    def __init__(self, log: list[tuple[str, bytes]]) -> None:
        self.log = log

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.log.append(("write", buffer))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        self.log.append(("read", b""))
        return b"HTTP/1.1 200 OK\r\n\r\n"

    async def aclose(self) -> None:
        self.log.append(("close", b""))

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self.log.append(("tls", b""))
        return RecordingStream(self.log)

    def get_extra_info(self, info: str) -> object:
        return f"info:{info}"


@pytest.fixture
def log() -> list[tuple[str, bytes]]:
    return []


@pytest.fixture
def stream(log: list[tuple[str, bytes]]) -> HeadWithBodyStream:
    return HeadWithBodyStream(RecordingStream(log))


async def test_a_head_goes_out_with_the_body_in_one_write(
    stream: HeadWithBodyStream, log: list[tuple[str, bytes]]
) -> None:
    await stream.write(HEAD)
    assert log == []
    await stream.write(b"{}")
    await stream.read(1024)
    assert log == [("write", HEAD + b"{}"), ("read", b"")]


async def test_a_head_without_a_body_goes_out_before_the_response_is_read(
    stream: HeadWithBodyStream, log: list[tuple[str, bytes]]
) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
    await stream.write(head)
    await stream.read(1024)
    await stream.write(head)  # the next request on the kept-alive connection
    await stream.read(1024)
    assert log == [("write", head), ("read", b""), ("write", head), ("read", b"")]


async def test_a_chunked_body_keeps_its_order_and_its_end_goes_before_the_read(
    stream: HeadWithBodyStream, log: list[tuple[str, bytes]]
) -> None:
    head = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
    for piece in (head, b"2\r\n{}\r\n", b"0\r\n\r\n"):
        await stream.write(piece)
    await stream.read(1024)
    assert log == [("write", head + b"2\r\n{}\r\n"), ("write", b"0\r\n\r\n"), ("read", b"")]


async def test_tls_starts_after_what_is_held_and_its_stream_coalesces_too(
    stream: HeadWithBodyStream, log: list[tuple[str, bytes]]
) -> None:
    await stream.write(b"CONNECT x:443 HTTP/1.1\r\n\r\n")  # held, then sent before TLS
    secured = await stream.start_tls(ssl.create_default_context(), "x")
    await secured.write(HEAD)
    await secured.write(b"{}")
    connect = b"CONNECT x:443 HTTP/1.1\r\n\r\n"
    assert log == [("write", connect), ("tls", b""), ("write", HEAD + b"{}")]
    assert secured.get_extra_info("socket") == "info:socket"


async def test_closing_drops_a_head_never_followed(
    stream: HeadWithBodyStream, log: list[tuple[str, bytes]]
) -> None:
    await stream.write(HEAD)
    await stream.aclose()
    assert log == [("close", b"")]


def test_the_transport_uses_the_coalescing_backend_only_when_asked() -> None:
    limits = httpx.Limits(max_connections=5)
    coalescing = httpx_transport(limits, coalesce_writes=True)
    assert isinstance(coalescing._pool._network_backend, HeadWithBodyBackend)
    plain = httpx_transport(limits, coalesce_writes=False)
    assert not isinstance(plain._pool._network_backend, HeadWithBodyBackend)


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A raw HTTP/1.1 server on loopback answering each request with its body; it records
    each request's bytes as it read them (one entry per read)."""
    reads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await reader.read(65536)
                if not data:
                    writer.close()
                    return
                reads.append(data)
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(buffer) < length:
                data = await reader.read(65536)
                reads.append(data)
                buffer += data
            body, buffer = buffer[:length], buffer[length:]
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", reads
    finally:
        server.close()


@pytest.mark.parametrize("network", ["httptools", "asyncio"])
async def test_requests_over_real_http_arrive_whole_and_are_answered(
    echo_server: tuple[str, list[bytes]], network: str
) -> None:
    url, reads = echo_server
    transport = provider_transport(
        httpx.Limits(max_connections=2), coalesce_writes=True, network=network
    )
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        for n in range(3):  # one kept-alive connection, a body each time, then none
            posted = await client.post(f"{url}/v1/chat/completions", json={"n": n})
            assert posted.json() == {"n": n}
        got = await client.get(f"{url}/healthz")
        assert (got.status_code, got.content) == (200, b"")
    posts = [r for r in reads if r.startswith(b"POST")]
    assert len(posts) == 3
    assert all(r.endswith(b'{"n":%d}' % n) for n, r in enumerate(posts))  # each arrived whole
