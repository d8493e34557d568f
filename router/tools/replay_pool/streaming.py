"""Response bodies sent over time: paced server-sent events, and bodies cut mid-way.

A stream is ``data: <chunk json>\\n\\n`` events: a role chunk, content deltas of
``chunk_chars`` characters (then tool-call deltas, :func:`answer_deltas`) paced at
``chunks_per_s``, a chunk with the finish reason, a usage chunk when asked for, then
``data: [DONE]``. A stall pauses before one delta; a cut
raises ``StreamCut`` before one, which makes the server drop the connection: the client sees
a body that ends without a finish reason or ``[DONE]`` (over HTTP/1.1, an incomplete chunked
body; httpx raises ``RemoteProtocolError``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from router.tools.replay_pool.faults import Fault
from router.tools.replay_pool.protocol import Answer

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

DONE_EVENT = b"data: [DONE]\n\n"

log = logging.getLogger("signalroute.replay")


class StreamCut(Exception):  # noqa: N818 - it is an event, not an error of the caller's
    """Raised inside a response body on purpose, to break the connection mid-body.

    Not a ``SignalrouteError``: nobody handles it. The server logs it and closes the
    connection; that is the fault being simulated.
    """


def _not_a_stream_cut(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], StreamCut))


def quiet_stream_cuts(logger_name: str = "uvicorn.error") -> None:
    """Stop a server's logger from printing a traceback for every injected cut (each cut is
    logged once, at INFO, by ``signalroute.replay``). Idempotent."""
    logging.getLogger(logger_name).addFilter(_not_a_stream_cut)


def _cut(message: str) -> StreamCut:
    log.info("%s", message)
    return StreamCut(message)


def sse_event(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as compact JSON."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def split_content(text: str, chunk_chars: int) -> list[str]:
    """``text`` in consecutive pieces of ``chunk_chars`` characters (the last may be shorter)."""
    return [text[start : start + chunk_chars] for start in range(0, len(text), chunk_chars)]


def answer_deltas(answer: Answer, chunk_chars: int) -> list[dict[str, Any]]:
    """The deltas an answer streams as, after the role chunk: its content in pieces of
    ``chunk_chars``, then each tool call as OpenAI streams one: a delta with its ``index``,
    ``id``, ``type``, ``function.name`` and empty ``arguments``, then its arguments in
    pieces (each a delta with the ``index`` and ``function.arguments`` only)."""
    deltas: list[dict[str, Any]] = [
        {"content": piece} for piece in split_content(answer.content, chunk_chars)
    ]
    for index, call in enumerate(answer.tool_calls):
        opening = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [opening]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in split_content(call.arguments, chunk_chars)
        ]
    return deltas


async def stream_answer(
    answer: Answer,
    fault: Fault,
    *,
    chunk_chars: int,
    chunks_per_s: float,
    include_usage: bool,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> AsyncIterator[bytes]:
    """The SSE body of ``answer``, with ``fault``'s stall or cut applied (other kinds are not
    stream faults and are ignored here).

    Events are written as they fall due: each on its own at a pace a client can follow,
    together when several are due at once (a fast pace), as a server writes what it has."""
    pieces = answer_deltas(answer, chunk_chars)
    fault_at = math.floor(fault.at_fraction * len(pieces))
    interval_s = 1.0 / chunks_per_s
    opening = {"role": "assistant", "content": None if answer.tool_calls else ""}
    due = [sse_event(answer.chunk(opening))]
    start = clock()
    for index in range(len(pieces) + 1):
        if index == fault_at and fault.kind in ("stall", "cut") and due:
            yield b"".join(due)
            due = []
        if index == fault_at and fault.kind == "stall":
            await sleep(fault.stall_ms / 1000.0)
            start += fault.stall_ms / 1000.0
        if index == fault_at and fault.kind == "cut":
            raise _cut(f"replay fault: stream cut after {index} of {len(pieces)} deltas")
        if index == len(pieces):
            break
        delay_s = start + index * interval_s - clock()
        if delay_s > 0:
            if due:
                yield b"".join(due)
                due = []
            await sleep(delay_s)
        due.append(sse_event(answer.chunk(pieces[index])))
    due.append(sse_event(answer.chunk({}, answer.finish_reason)))
    if include_usage:
        due.append(sse_event(answer.usage_chunk()))
    due.append(DONE_EVENT)
    yield b"".join(due)


async def cut_body(body: bytes, at_fraction: float) -> AsyncIterator[bytes]:
    """The first ``floor(at_fraction * len(body))`` bytes of ``body``, then ``StreamCut``."""
    keep = math.floor(at_fraction * len(body))
    if keep:
        yield body[:keep]
    raise _cut(f"replay fault: body cut after {keep} of {len(body)} bytes")
