"""Probing arms: the one-token request of ``check --probe`` and the reachability look of
``/readyz`` (transport faked with httpx.MockTransport; real HTTP is in the service tests)."""

from __future__ import annotations

import asyncio
import json

import httpx

from router.arm_probes import ArmReachability, probe_arm, probe_arms
from router.pool import Arm
from router.providers import OpenAICompatProvider

UP = Arm(name="up", base_url="http://up.test/v1", model="m-up")
LOCKED = Arm(name="locked", base_url="http://locked.test/v1", model="m")
DOWN = Arm(name="down", base_url="http://down.test/v1", model="m")
SLOW = Arm(name="slow", base_url="http://slow.test/v1", model="m")


def provider_transport(seen: list[dict[str, object]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.test":
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.host == "locked.test":
            return httpx.Response(401, json={"error": {"message": "bad key"}})
        if request.url.host == "slow.test":
            raise httpx.ConnectTimeout("timed out", request=request)
        if request.method == "POST":
            seen.append(json.loads(request.content))
            return httpx.Response(
                200,
                json={
                    "choices": [{"message": {"content": "ok"}, "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 1},
                },
            )
        return httpx.Response(200, json={"data": []})

    return httpx.MockTransport(handle)


async def test_probe_sends_one_token_and_reports_answers_and_failures() -> None:
    seen: list[dict[str, object]] = []
    async with httpx.AsyncClient(transport=provider_transport(seen)) as http:
        results = await probe_arms([OpenAICompatProvider(arm, http) for arm in (UP, LOCKED, DOWN)])
    assert [(r.arm, r.ok) for r in results] == [("up", True), ("locked", False), ("down", False)]
    assert results[0].detail == "'ok'"
    assert "HTTP 401" in results[1].detail
    assert "bad key" in results[1].detail
    assert "ConnectError" in results[2].detail
    assert seen == [
        {
            "model": "m-up",
            "messages": [{"role": "user", "content": "Reply with the single word: ok"}],
            "max_tokens": 1,
            "temperature": 0.0,
        }
    ]


async def test_probe_measures_latency_with_the_injected_clock() -> None:
    ticks = iter([10.0, 10.25])
    async with httpx.AsyncClient(transport=provider_transport([])) as http:
        result = await probe_arm(OpenAICompatProvider(UP, http), clock=lambda: next(ticks))
    assert result.latency_ms == 250.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_reachability_counts_any_http_answer_and_names_what_failed() -> None:
    looks: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        looks.append(str(request.url))
        return provider_transport([]).handle_request(request)

    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        down_too = DOWN.model_copy(update={"name": "down-too"})
        reachability = ArmReachability(
            [UP, LOCKED, DOWN, SLOW, down_too], http, ttl_s=10.0, timeout_s=2.0, clock=clock
        )
        first = await reachability.unreachable()
        assert set(first) == {"down", "slow", "down-too"}  # a 401 answer is an answer
        assert first["down-too"] == first["down"]
        assert first["down"] == (
            "unreachable: ConnectError at http://down.test/v1/models: connection refused"
        )
        assert first["slow"] == "unreachable: no answer from http://slow.test/v1/models within 2 s"
        assert len(looks) == 4  # one per address

        clock.now = 9.9
        assert await reachability.unreachable() == first
        assert len(looks) == 4  # still fresh: nobody asked again

        clock.now = 10.0
        assert await reachability.unreachable() == first  # answered from the last look...
        await asyncio.sleep(0.01)  # ...while a new one runs in the background
        assert len(looks) == 8
        await reachability.close()
