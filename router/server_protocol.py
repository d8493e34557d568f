"""The HTTP/1.1 protocol the service runs under uvicorn: httptools, with the writes a response
makes in one turn of the event loop sent to the socket together.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send``
system calls for one small JSON answer, and two wake-ups of the client, which reads the head,
parses it and waits again for the body. On a busy machine each wake-up is a context switch
that the client (and the next request) pays for. ``CoalescingTransport`` holds what is
written during one turn of the loop and sends it with one call at the end of that turn, so
an answer whose body follows its head at once (every JSON response) leaves in one piece. A
streamed response still goes out as its chunks are produced: nothing is held past the turn
it was written in. A response that is complete (its last body message sent) goes out at
once, not at the end of the turn: what the application does after it (background tasks, the
middleware's bookkeeping) no longer stands between the answer and the client.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from router.settings import Settings


class CoalescingTransport(asyncio.Transport):
    """A transport that sends the writes of one event-loop turn with one write to ``inner``.

    Ordering is kept: everything held goes out, in order, before the connection is closed
    (``close``; ``abort`` drops it, as it drops the inner transport's buffer) and before
    ``write_eof``."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held now (a no-op when nothing is)."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        if not self._inner.is_closing():
            self._inner.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self._held = []
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(map(len, self._held))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()


def http_protocol(settings: Settings) -> type[asyncio.Protocol] | str:
    """uvicorn's ``http`` setting for ``settings`` (``coalesce_writes``)."""
    return CoalescingHttpToolsProtocol if settings.coalesce_writes else "httptools"


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``CoalescingTransport``: pass it as uvicorn's
    ``http`` setting."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(self._coalescing)

    def on_response_complete(self) -> None:
        """The response's last bytes are written: send what is held now."""
        self._coalescing.flush()
        super().on_response_complete()
