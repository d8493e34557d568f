"""``within``: a look-up in the store on a request's way, bounded in time."""

from __future__ import annotations

import asyncio

import pytest

from features.errors import StoreUnavailableError
from router.routing import within


async def test_a_look_up_in_time_gives_its_answer() -> None:
    async def answer() -> str:
        await asyncio.sleep(0.01)
        return "gpt-4"

    assert await within(answer(), 5, "the arm") == "gpt-4"


async def test_a_look_up_past_its_time_is_given_up_without_waiting_for_its_cancellation() -> None:
    cancelled, wound_up = asyncio.Event(), asyncio.Event()

    async def hung() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:  # as psycopg does: cancelling takes a while
            cancelled.set()
            await asyncio.sleep(0.2)
            wound_up.set()
            raise
        return "never"

    with pytest.raises(StoreUnavailableError, match=r"did not answer the arm within 0\.05 s"):
        await within(hung(), 0.05, "the arm")
    assert not wound_up.is_set()  # the request went on before the cancellation ended
    await asyncio.wait_for(wound_up.wait(), 5)  # which it did, behind it
    assert cancelled.is_set()


async def test_a_look_up_that_fails_raises_its_error() -> None:
    async def down() -> str:
        raise StoreUnavailableError("the database is down")

    with pytest.raises(StoreUnavailableError, match="the database is down"):
        await within(down(), 5, "the arm")


async def test_cancelling_the_request_cancels_its_look_up() -> None:
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    request = asyncio.ensure_future(within(slow(), 5, "the arm"))
    await asyncio.sleep(0.05)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(cancelled.wait(), 1)
