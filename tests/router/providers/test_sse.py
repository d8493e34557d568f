"""Server-sent events read a block at a time: the same events however the stream is split."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from router.providers.sse import EventReader, event_batches

STREAM = (
    b": a comment\n"
    b'data: {"a": 1}\n\n'
    b"event: message\r\nid: 7\r\ndata: first line\r\ndata:second line\r\n\r\n"
    b"data\rdata: after an empty one\r\r"
    b"retry: 10\n"
    b"data: [DONE]\n\n"
    b"dataX: not data\n\n"
    b"data: no blank line at the end"
)
EVENTS = [
    b'{"a": 1}',
    b"first line\nsecond line",
    b"\nafter an empty one",
    b"[DONE]",
    b"no blank line at the end",
]


def read(blocks: list[bytes]) -> list[bytes]:
    reader = EventReader()
    events = [event for block in blocks for event in reader.feed(block)]
    return events + reader.finish()


def test_a_stream_read_whole_gives_its_events() -> None:
    assert read([STREAM]) == EVENTS


@pytest.mark.parametrize("size", [1, 2, 3, 5, 13])
def test_every_split_gives_the_same_events(size: int) -> None:
    blocks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert read(blocks) == EVENTS


def test_a_split_between_cr_and_lf_is_one_line_end() -> None:
    assert read([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [b"a\nb"]


def test_an_event_completes_in_the_block_that_ends_it() -> None:
    reader = EventReader()
    assert reader.feed(b"data: one\n\ndata: tw") == [b"one"]
    assert reader.feed(b"o\n") == []
    assert reader.feed(b"\ndata: three\n\n") == [b"two", b"three"]
    assert reader.finish() == []


async def test_batches_hold_the_events_of_one_block() -> None:
    async def blocks() -> AsyncIterator[bytes]:
        for block in (b"data: 1\n\ndata: 2\n\n", b"data: 3", b"\n\n: only a comment\n", b"data: 4"):
            yield block

    assert [batch async for batch in event_batches(blocks())] == [
        [b"1", b"2"],
        [b"3"],
        [b"4"],
    ]


@pytest.mark.parametrize("size", [1, 2, 4, 100])
def test_a_byte_order_mark_at_the_start_is_dropped(size: int) -> None:
    stream = b"\xef\xbb\xbfdata: first\n\ndata: \xef\xbb\xbfkept\n\n"
    blocks = [stream[i : i + size] for i in range(0, len(stream), size)]
    assert read(blocks) == [b"first", b"\xef\xbb\xbfkept"]
