"""Server-sent events: turn a byte stream's lines into the ``data:`` payloads it carries."""

from __future__ import annotations

from collections.abc import AsyncIterator

DONE = "[DONE]"


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """Yield each event's data (multi-line data joined by newlines), in order.

    Comments (``:``) and other fields (``event``, ``id``, ``retry``) are skipped; an event ends
    at a blank line, and a last event without its blank line is still yielded.
    """
    buffer: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)
