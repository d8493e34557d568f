"""httpcore's network backend on asyncio's own transports, without anyio in between.

httpx runs its connections on asyncio through anyio: each read and write opens a cancel
scope for its timeout, each write adds a cancellation checkpoint, and each request's check of
a pooled connection ("has the provider closed it?") builds anyio's attribute table. On the
router's path that was about a third of what a provider call cost the router in CPU.

``AsyncioStream`` reads from a buffer its protocol fills: a read takes what has arrived at
once, or waits on one future with one timer for its timeout. A write hands its bytes to the
transport and waits only when the transport asks it to (flow control). A pooled connection
is expired when bytes or the end of the stream arrived while it was idle. Errors are
httpcore's (``ConnectError``, ``ReadTimeout``, ...), so httpx maps them as it maps anyio's.
TLS is asyncio's (``loop.start_tls``); certificates and hostnames are checked by the
``ssl`` context httpx passes, as before.
"""

# The streams keep httpcore's signatures, ``timeout`` parameters included.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore

READ_HIGH_WATER = 256 * 1024
"""Bytes buffered unread before the connection stops reading from its socket (resumed by
the next read)."""


class _Buffered(asyncio.Protocol):
    """What arrives on one connection, and whether it may be written to."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        """Why the connection was lost (None: closed cleanly, or not lost)."""
        self.lost = False
        self.paused = False
        self.reading_paused = False
        self.waiters: list[asyncio.Future[bool]] = []
        """Reads, and writes waiting for flow control, until something happens."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self.wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self.wake()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.eof = True
        self.error = exc
        self.paused = False
        self.wake()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.wake()

    def wake(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(True)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (TCP, or TLS over it) as httpcore's network stream."""

    def __init__(self, transport: asyncio.Transport, protocol: _Buffered) -> None:
        self._transport = transport
        self._protocol = protocol

    async def _wait(self, deadline: float | None) -> bool:
        """Wait until the protocol has news; False when ``deadline`` (loop time) passed."""
        protocol = self._protocol
        loop = asyncio.get_running_loop()
        if deadline is not None and deadline <= loop.time():
            return False
        waiter: asyncio.Future[bool] = loop.create_future()
        protocol.waiters.append(waiter)
        timer = loop.call_at(deadline, _expire, waiter) if deadline is not None else None
        try:
            return await waiter
        finally:
            protocol.waiters.remove(waiter)
            if timer is not None:
                timer.cancel()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            deadline = _deadline(timeout)
            while not protocol.buffer and not protocol.eof:
                if not await self._wait(deadline):
                    raise httpcore.ReadTimeout(f"no data within {timeout} s")
        buffer = protocol.buffer
        if buffer:
            if len(buffer) <= max_bytes:
                data = bytes(buffer)
                buffer.clear()
            else:
                data = bytes(buffer[:max_bytes])
                del buffer[:max_bytes]
            if protocol.reading_paused and len(buffer) <= READ_HIGH_WATER // 2:
                protocol.reading_paused = False
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        deadline = _deadline(timeout) if protocol.paused else None
        while protocol.paused:  # the transport's buffer is full: wait until it drains
            if not await self._wait(deadline):
                raise httpcore.WriteTimeout(f"could not write within {timeout} s")
        if protocol.lost and protocol.error is not None:
            raise httpcore.WriteError(str(protocol.error) or type(protocol.error).__name__)

    async def aclose(self) -> None:
        # httpcore closes a connection only when it is done with it (an answer read, a
        # request failed or abandoned): what is unsent no longer matters. close() would wait
        # for it to drain (TCP, forever if the server stopped reading) or for the server's
        # TLS close_notify (up to 30 s), holding the socket; abort() releases it at once, as
        # httpcore's own anyio backend does.
        self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                secured = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout} s") from exc
        except (OSError, ssl.SSLError, EOFError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if secured is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = secured  # reading is paused and resumed above TLS
        return AsyncioStream(secured, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # asked of a pooled connection: did the provider close it?
            protocol = self._protocol
            return bool(protocol.buffer) or protocol.eof
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


async def _connected(
    connecting: Any, timeout: float | None, socket_options: Iterable[Any] | None
) -> AsyncioStream:
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await connecting
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"not connected within {timeout} s") from exc
    except OSError as exc:
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
    try:
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
    except OSError as exc:
        transport.abort()
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
    return AsyncioStream(transport, protocol)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections as ``AsyncioStream``s (asyncio sets TCP_NODELAY on its TCP sockets)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address is not None else None
        return await _connected(
            loop.create_connection(_Buffered, host, port, local_addr=local),
            timeout,
            socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        return await _connected(
            loop.create_unix_connection(_Buffered, path), timeout, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
