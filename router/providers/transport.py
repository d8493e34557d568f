"""The HTTP transport the providers share: httpx's, with each request's head sent together
with the first bytes of its body.

httpcore writes a request's status line and headers, then its body, as two socket writes:
the provider wakes up for the head, parses it, and waits again for the body. On a busy
machine each wake-up is a context switch paid on the request's path. ``HeadWithBodyStream``
holds a request head until the next write (the body) or the next read (a request without
a body), and sends head and body in one write. Nothing else changes: the order of the bytes,
TLS, timeouts and the connection pool are httpx's own.

It wraps the network backend of httpx's connection pool, a private attribute
(``_pool._network_backend``): a test fails if an httpx release renames it.
"""

# The streams keep httpcore's signatures, ``timeout`` parameters included.
# ruff: noqa: ASYNC109

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from router.providers.http11 import Http11Transport
from router.providers.network import AsyncioBackend

HEAD_END = b"\r\n\r\n"

NETWORKS = ("httptools", "asyncio", "anyio")
"""What the providers' connections can run on (``provider_transport``)."""


class HeadWithBodyStream(httpcore.AsyncNetworkStream):
    """A network stream that sends a request head with what is written after it.

    A write ending the way an HTTP head ends (a blank line) is held when nothing is held; the
    next write, read, ``start_tls`` or close sends it first (a close drops it only if the
    send fails). A chunked body's last chunk also ends with a blank line: it is held until
    the response is read, which follows at once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held = b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if not self._held and buffer.endswith(HEAD_END):
            self._held = buffer
            return
        data = self._held + buffer if self._held else buffer
        self._held = b""
        await self._inner.write(data, timeout)

    async def _flush(self, timeout: float | None) -> None:
        if self._held:
            data, self._held = self._held, b""
            await self._inner.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush(timeout)
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held = b""  # a request not sent in full is abandoned with its connection
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        await self._flush(timeout)
        secured = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return HeadWithBodyStream(secured)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class HeadWithBodyBackend(httpcore.AsyncNetworkBackend):
    """A network backend whose streams are ``HeadWithBodyStream``s over ``inner``'s."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return HeadWithBodyStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return HeadWithBodyStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def provider_transport(
    limits: httpx.Limits, *, coalesce_writes: bool, network: str = "httptools"
) -> httpx.AsyncBaseTransport:
    """The providers' transport, with ``limits``. On ``network`` ``httptools`` (the default)
    it is ``router.providers.http11``'s, which always writes a request's head and body
    together. Otherwise it is httpx's, its connections running on ``asyncio``
    (``router.providers.network``) or ``anyio`` (httpx's own); with ``coalesce_writes``
    their streams are ``HeadWithBodyStream``s.

    httpx builds its connection pool without a way to pass a network backend; the pool's
    backend is replaced after the fact (a test checks it took effect, so an httpcore release
    that renames it fails the test rather than quietly running on another backend).

    Raises ValueError for another ``network``."""
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    if network == "httptools":
        return Http11Transport(limits)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = transport._pool
    backend: httpcore.AsyncNetworkBackend = (
        AsyncioBackend() if network == "asyncio" else pool._network_backend
    )
    pool._network_backend = HeadWithBodyBackend(backend) if coalesce_writes else backend
    return transport
