"""HTTP/1.1 to the providers on asyncio's transports and httptools' parser, under httpx.

httpx's default transport runs each call through httpcore's connection pool and h11's
parser, both in Python: measured on a streamed call to a local provider, 1.27 ms of the
router's CPU against 0.16 ms for the same exchange written and parsed directly. That was
more than the rest of the call's path. ``Http11Transport`` is an ``httpx.AsyncBaseTransport``
that does the exchange itself: the request's head and body in one write, the response parsed
by httptools (C, the parser uvicorn serves with), its body handed over as it arrives.
Everything above the transport stays httpx's: the client, its timeouts, its errors (the
transport raises httpx's own: ``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...),
the decoding of compressed bodies, proxies from the environment (httpx routes those to its
own transports).

Connections are kept alive per origin and reused while the server keeps them: one whose
server closed it, or sent anything while it was idle, or that was idle longer than the
limits' ``keepalive_expiry``, is closed instead. At most ``max_connections`` are open (a
call waits for one up to its ``pool`` timeout), and at most ``max_keepalive_connections``
idle. A response read to its end goes back to the pool; one closed before its end closes its
connection. An informational answer (1xx) is skipped for the answer after it. HTTP/1.1
only, as httpx's default; no upgrades.
"""

# The transport keeps httpx's names for its timeouts (connect, read, write, pool).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools
import httpx

from router.providers.network import READ_HIGH_WATER

Origin = tuple[str, str, int]
"""Scheme, host and port."""


def _wake(waiter: asyncio.Future[bool] | None, value: bool) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(value)


class _Connection(asyncio.Protocol):
    """One connection to a provider and the response it is reading (httptools' callbacks)."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.head_only = False
        self.framed = False
        """The response says where its body ends (a length, or chunks), not at the close."""
        self.body: list[bytes] = []
        self.buffered = 0
        self.lost = False
        self.error: BaseException | None = None
        self.stray = False
        """Bytes arrived while no response was expected: the connection cannot be reused."""
        self.writable = True
        self.reading_paused = False
        self.waiter: asyncio.Future[bool] | None = None
        self.idle_since = 0.0

    # --- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or self.complete:
            self.stray = True
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = httpx.RemoteProtocolError("the provider upgraded the connection")
            self._abort()
        except httptools.HttpParserError as exc:
            self.error = httpx.RemoteProtocolError(f"malformed response: {exc}")
            self._abort()
        _wake(self.waiter, True)

    def eof_received(self) -> bool:
        if self.head_done and not self.complete and not self.framed:
            self.complete = True  # a body without a length ends at the close
            self.keep_alive = False
        self.lost = True
        _wake(self.waiter, True)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if exc is not None and self.error is None:
            self.error = exc
        self.writable = True
        _wake(self.waiter, True)

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        _wake(self.waiter, True)

    # --- httptools ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.head_done:  # bytes after the answer, in the read that ended it
            raise httpx.RemoteProtocolError("the provider sent more than its answer")

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self.framed = True

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None, "a response is being read"
        self.status = parser.get_status_code()
        if 100 <= self.status < 200:  # informational (100 Continue, 103): the answer follows
            self.headers, self.reason, self.framed = [], b"", False
            return
        self.keep_alive = parser.should_keep_alive()
        self.head_done = True
        if self.head_only or self.status in (204, 304):
            self.complete = True  # no body follows
            self.keep_alive = self.keep_alive and not self.head_only

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > READ_HIGH_WATER and not self.reading_paused and self.transport:
            self.transport.pause_reading()
            self.reading_paused = True

    def on_message_complete(self) -> None:
        if self.head_done:  # not the end of an informational answer
            self.complete = True

    # --- the exchange ------------------------------------------------------------------------

    def start(self, head_only: bool) -> None:
        """Expect a new response."""
        self.parser = httptools.HttpResponseParser(self)
        self.status, self.reason, self.headers = 0, b"", []
        self.head_done = self.complete = self.keep_alive = self.framed = False
        self.head_only = head_only
        self.body, self.buffered = [], 0

    def take_body(self) -> bytes:
        """What arrived of the body since the last take (and read more from the socket)."""
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        self.body, self.buffered = [], 0
        if self.reading_paused and self.transport is not None and not self.lost:
            self.transport.resume_reading()
            self.reading_paused = False
        return data

    async def wait(self, timeout: float | None) -> bool:
        """Wait until something happens; False when ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, _wake, waiter, False) if timeout is not None else None
        try:
            woken: bool = await waiter
            return woken
        finally:
            if timer is not None:
                timer.cancel()
            self.waiter = None

    def reusable(self, now: float, expiry: float | None) -> bool:
        return not (
            self.lost
            or self.stray
            or self.error is not None
            or (self.transport is not None and self.transport.is_closing())
            or (expiry is not None and now - self.idle_since > expiry)
        )

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        # abort, not close: what is unsent no longer matters, and close() would hold the
        # socket until it drained (forever, if the server stopped reading)
        self._abort()
        self.lost = True


def _failure(connection: _Connection, doing: str) -> httpx.TransportError:
    error = connection.error
    if isinstance(error, httpx.TransportError):
        return error
    if isinstance(error, OSError):
        return httpx.ReadError(f"{doing}: {error}")
    return httpx.RemoteProtocolError(f"the provider closed the connection {doing}")


class _Body(httpx.AsyncByteStream):
    """A response's body as it arrives; closing it gives the connection back or closes it."""

    def __init__(
        self, transport: Http11Transport, connection: _Connection, read_timeout: float | None
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._timeout = read_timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            if connection.body:
                yield connection.take_body()
                continue
            if connection.complete:
                return
            if connection.lost or connection.error is not None:
                raise _failure(connection, "before the end of its answer")
            if not await connection.wait(self._timeout):
                raise httpx.ReadTimeout(f"no data within {self._timeout} s")

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            connection = self._connection
            done = connection.complete and connection.keep_alive and not connection.body
            self._transport._release(connection, reuse=done)


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 connections to any origin, kept alive within ``limits``.

    ``ssl_context`` checks the servers of ``https`` origins (default: httpx's, the system's
    and certifi's authorities)."""

    def __init__(
        self,
        limits: httpx.Limits,
        *,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl = ssl_context
        self._clock = clock
        self._max_open = limits.max_connections if limits.max_connections else math.inf
        idle = limits.max_keepalive_connections
        self._max_idle = idle if idle is not None else math.inf
        self._expiry = limits.keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._open = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        """Callers waiting for a connection to be released or closed."""
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{url.scheme!r} is not http or https")
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        body = await request.aread()
        message = _message(request, body)
        connection = await self._acquire(origin, timeouts)
        read_timeout, write_timeout = timeouts.get("read"), timeouts.get("write")
        try:
            connection.start(head_only=request.method == "HEAD")
            assert connection.transport is not None, "a connection has its transport"
            connection.transport.write(message)
            while not connection.writable and not connection.lost:
                if not await connection.wait(write_timeout):
                    raise httpx.WriteTimeout(f"could not write within {write_timeout} s")
            while not connection.head_done:
                if connection.lost or connection.error is not None:
                    raise _failure(connection, "without sending a response")
                if not await connection.wait(read_timeout):
                    raise httpx.ReadTimeout(f"no response within {read_timeout} s")
        except BaseException:
            self._release(connection, reuse=False)
            raise
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=_Body(self, connection, read_timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": connection.reason},
        )

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
                self._open -= 1
        self._idle.clear()
        self._idle_count = 0
        while self._waiters:  # each finds the transport closed
            self._wake_one()

    # --- the pool ----------------------------------------------------------------------------

    def _reused(self, origin: Origin) -> _Connection | None:
        """An idle connection to ``origin`` still fit for a request, if there is one."""
        idle = self._idle.get(origin)
        now = self._clock()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.reusable(now, self._expiry):
                return connection
            self._drop(connection)
        return None

    async def _acquire(self, origin: Origin, timeouts: dict[str, float | None]) -> _Connection:
        """An idle connection to ``origin``, else a new one once there is room (an idle one
        of another origin is closed to make it). Raises httpx.PoolTimeout when neither comes
        within the ``pool`` timeout, and what ``_connect`` raises."""
        timeout = timeouts.get("pool")
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            if self._closed:  # closed while this caller waited
                raise httpx.ConnectError("the transport is closed")
            connection = self._reused(origin)
            if connection is not None:
                return connection
            if self._open < self._max_open:
                return await self._connect(origin, timeouts)
            if self._idle_count:
                self._drop_oldest_idle()
                continue
            left = None if deadline is None else max(0.0, deadline - self._clock())
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(left):
                    await waiter
            except BaseException as exc:  # timed out or cancelled
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, but leaving: the room goes to the next
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout(f"no connection free within {timeout} s") from exc
                raise

    async def _connect(self, origin: Origin, timeouts: dict[str, float | None]) -> _Connection:
        self._open += 1
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        timeout = timeouts.get("connect")
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError as exc:
            self._closed_one()
            message = f"not connected to {host}:{port} within {timeout} s"
            raise httpx.ConnectTimeout(message) from exc
        except (OSError, ssl.SSLError) as exc:
            self._closed_one()
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._closed_one()
            raise
        return protocol

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return

    def _closed_one(self) -> None:
        self._open -= 1
        self._wake_one()

    def _release(self, connection: _Connection, *, reuse: bool) -> None:
        connection.parser = None
        if (
            reuse
            and not self._closed
            and self._idle_count < self._max_idle
            and connection.reusable(self._clock(), None)
        ):
            connection.idle_since = self._clock()
            self._idle.setdefault(connection.origin, []).append(connection)
            self._idle_count += 1
            self._wake_one()  # a caller waiting for room may take it (or close it for its own)
            return
        self._drop(connection)

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._closed_one()

    def _drop_oldest_idle(self) -> None:
        oldest = min(
            (c for connections in self._idle.values() for c in connections),
            key=lambda c: c.idle_since,
        )
        self._idle[oldest.origin].remove(oldest)
        self._idle_count -= 1
        self._drop(oldest)


def _message(request: httpx.Request, body: bytes) -> bytes:
    """The request's head and body, as written on the connection."""
    url = request.url
    target = url.raw_path or b"/"
    head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), target)]
    chunked = False
    for name, value in request.headers.raw:
        if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        head.append(b"%s: %s\r\n" % (name, value))
    head.append(b"\r\n")
    if chunked:  # the body was read whole: one chunk, then the last
        body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    return b"".join(head) + body
