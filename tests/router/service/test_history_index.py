"""The running service answers the historical look-up from its in-process index, kept from
the store, and from the store when the index is off."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import pytest

from tests.router.service.conftest import ServiceClient, ServiceFactory

PROMPT = "Write a python function to check whether a number is a perfect square."


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def neighbours(body: dict[str, Any]) -> float:
    """The neighbour count signal of the request's pre-generation decision."""
    pre = next(d for d in body["trace"]["decisions"] if d["stage"] == "pre")
    return float(pre["signals"]["historical"]["neighbours"])


async def route(client: ServiceClient) -> dict[str, Any]:
    response = await client.post("/route-and-run", json={"messages": user(PROMPT)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_routed_request_sees_its_neighbours_through_the_index(
    service: ServiceFactory,
) -> None:
    async with service(history_index_refresh_ms=20) as client:
        index = client.runtime.history_index
        assert index is not None
        assert index.ready
        first = await route(client)
        assert neighbours(first) == 0.0
        for _ in range(200):  # the journal writes it, the refresher reads it
            if uuid.UUID(first["id"]) in index:
                break
            await asyncio.sleep(0.02)
        assert uuid.UUID(first["id"]) in index
        second = await route(client)
        assert index.lookups == 2
    assert neighbours(second) == pytest.approx(math.log1p(1), abs=1e-4)


async def test_with_the_index_off_the_store_answers(service: ServiceFactory) -> None:
    async with service(history_index=False) as client:
        assert client.runtime.history_index is None
        first = await route(client)
        for _ in range(200):  # the journal writes the first request's embedding
            second = await route(client)
            if neighbours(second) > 0:
                break
            await asyncio.sleep(0.02)
    assert neighbours(first) == 0.0
    assert neighbours(second) >= math.log1p(1) - 1e-4
