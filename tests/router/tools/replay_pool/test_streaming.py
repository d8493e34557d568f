"""Paced SSE bodies and cut bodies, with a fake clock."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from router.tools.replay_pool.faults import Fault, FaultKind
from router.tools.replay_pool.protocol import Answer, Usage
from router.tools.replay_pool.streaming import (
    DONE_EVENT,
    StreamCut,
    cut_body,
    quiet_stream_cuts,
    split_content,
    sse_event,
    stream_answer,
)
from tests.router.conftest import parse_sse, streamed_content

ANSWER = Answer("id", 1, "m", "abcdefghij" * 3, "stop", Usage(5, 8, 0.25))


class FakeTime:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def drain(body: AsyncIterator[bytes], into: list[bytes]) -> None:
    """Append every part of ``body`` to ``into`` (which keeps them if ``body`` raises)."""
    async for part in body:
        into.append(part)


def fault(kind: FaultKind, at_fraction: float = 0.5) -> Fault:
    return Fault(kind, latency_ms=0.0, at_fraction=at_fraction, stall_ms=700.0, retry_after_s=1)


async def collect(fake: FakeTime, kind: FaultKind, *, include_usage: bool = True) -> list[bytes]:
    events = []
    body = stream_answer(
        ANSWER,
        fault(kind),
        chunk_chars=4,
        chunks_per_s=10.0,
        include_usage=include_usage,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    async for event in body:
        events.append(event)
    return events


def test_split_content() -> None:
    assert split_content("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert split_content("", 4) == []


async def test_a_stream_is_role_deltas_finish_usage_done() -> None:
    fake = FakeTime()
    events = await collect(fake, "none")
    payloads = parse_sse(b"".join(events).decode())
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert streamed_content(payloads) == ANSWER.content
    deltas = [p for p in payloads[1:-3]]
    assert [len(p["choices"][0]["delta"]["content"]) for p in deltas] == [4] * 7 + [2]
    assert payloads[-3]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert payloads[-2]["choices"] == []
    assert payloads[-2]["usage"]["cost_usd"] == 0.25
    assert events[-1].endswith(DONE_EVENT)
    # 8 deltas at 10/s: the last one is due 0.7 s after the first.
    assert fake.now == pytest.approx(0.7)
    # Each delta is written when it falls due: the role and the first delta together, then
    # one write per delta, the last with the finish, the usage and [DONE].
    assert len(events) == 8


async def test_events_due_together_are_written_together() -> None:
    fake = FakeTime()
    ticks = iter(range(1_000_000))

    def clock() -> float:  # a microsecond passes per look: every event is already due
        return next(ticks) * 1e-6

    body = stream_answer(
        ANSWER,
        fault("none"),
        chunk_chars=4,
        chunks_per_s=1e9,
        include_usage=True,
        sleep=fake.sleep,
        clock=clock,
    )
    events = [event async for event in body]
    assert len(events) == 1
    assert streamed_content(parse_sse(events[0].decode())) == ANSWER.content
    assert fake.sleeps == []


async def test_usage_chunk_only_when_asked() -> None:
    payloads = parse_sse(b"".join(await collect(FakeTime(), "none", include_usage=False)).decode())
    assert all("usage" not in p for p in payloads if isinstance(p, dict))
    assert payloads[-1] == "[DONE]"


async def test_a_stall_pauses_mid_stream() -> None:
    fake = FakeTime()
    events = await collect(fake, "stall")
    assert 0.7 in fake.sleeps
    assert fake.now == pytest.approx(1.4)
    assert streamed_content(parse_sse(b"".join(events).decode())) == ANSWER.content


async def test_a_cut_stops_before_the_finish() -> None:
    fake = FakeTime()
    events: list[bytes] = []
    body = stream_answer(
        ANSWER,
        fault("cut"),
        chunk_chars=4,
        chunks_per_s=10.0,
        include_usage=True,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    with pytest.raises(StreamCut, match="after 4 of 8"):
        await drain(body, events)
    payloads = parse_sse(b"".join(events).decode())
    assert streamed_content(payloads) == ANSWER.content[:16]
    assert all(p["choices"][0]["finish_reason"] is None for p in payloads)


async def test_a_cut_body_is_a_strict_prefix() -> None:
    body = json.dumps({"a": "x" * 100}).encode()
    sent: list[bytes] = []
    with pytest.raises(StreamCut):
        await drain(cut_body(body, 0.3), sent)
    assert b"".join(sent) == body[: int(0.3 * len(body))]


def test_sse_event_is_one_data_line() -> None:
    payload: dict[str, Any] = {"text": "two\nlines"}
    event = sse_event(payload)
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert event.count(b"\n") == 2


def test_server_tracebacks_of_cuts_are_filtered() -> None:
    quiet_stream_cuts("tests.replay.server")
    logger = logging.getLogger("tests.replay.server")
    cut = logging.LogRecord(
        "x", logging.ERROR, "f", 1, "boom", None, (StreamCut, StreamCut(), None)
    )
    other = logging.LogRecord(
        "x", logging.ERROR, "f", 1, "boom", None, (ValueError, ValueError(), None)
    )
    assert not logger.filter(cut)
    assert logger.filter(other)
