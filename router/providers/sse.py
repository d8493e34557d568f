"""Server-sent events: the ``data:`` payloads a byte stream carries, a network read at a time.

``EventReader`` is fed the stream's blocks as they arrive and returns the events each one
completes, so a caller handles all the events of one read together (a provider that sends an
answer faster than it is read delivers many events in one read). Lines end with ``\\n``,
``\\r\\n`` or ``\\r``, split anywhere between blocks; a byte order mark at the start is
dropped; the payloads are bytes, as a JSON parser takes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

DONE = b"[DONE]"

_BOM = b"\xef\xbb\xbf"


class EventReader:
    """Splits a byte stream into its events' data (multi-line data joined by newlines).

    Comments (``:``) and other fields (``event``, ``id``, ``retry``) are skipped; an event
    ends at a blank line, and a last event without its blank line is returned by ``finish``.
    """

    def __init__(self) -> None:
        self._tail = b""
        """The start of a line whose end has not arrived."""
        self._data: list[bytes] = []
        """The data lines of the event under way."""
        self._begun = False
        """Whether the stream's first bytes (and a byte order mark there) are behind."""

    def feed(self, block: bytes) -> list[bytes]:
        """The events ``block`` completes, in order."""
        text = self._tail + block if self._tail else block
        if not self._begun:  # one byte order mark at the start is dropped
            if len(text) < len(_BOM) and _BOM.startswith(text):
                self._tail = text
                return []
            self._begun = True
            text = text.removeprefix(_BOM)
        carried = b""
        if b"\r" in text:
            if text.endswith(b"\r"):  # maybe the first half of a "\r\n": wait for the next
                text, carried = text[:-1], b"\r"
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = text.split(b"\n")
        self._tail = lines.pop() + carried
        return self._lines(lines)

    def finish(self) -> list[bytes]:
        """The last event, when the stream ended without its blank line."""
        tail, self._tail = self._tail.rstrip(b"\r"), b""
        return self._lines([tail, b""])

    def _lines(self, lines: list[bytes]) -> list[bytes]:
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line == b"data":  # a field name alone: empty data
                data.append(b"")
        return events


async def event_batches(blocks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The events of each block of ``blocks`` that completes any, one list per block."""
    reader = EventReader()
    async for block in blocks:
        events = reader.feed(block)
        if events:
            yield events
    last = reader.finish()
    if last:
        yield last
