"""Latency profiles and degradation episodes of the replay pool, on a fake clock; and the pool
serving them over ASGI (slow answers, error bursts, 429s with rate-limit headers)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from router.settings import DegradationEpisode, LatencyProfile
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.conditions import Conditions, SystemPlan, conditions_at, is_on
from router.tools.replay_pool.matching import PromptMatcher
from tests.router.conftest import BASE_URL, replay_settings

MODEL = "gpt-4-1106-preview"


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_an_episode_is_on_from_its_start_for_its_duration_and_repeats() -> None:
    once = DegradationEpisode(model="m", kind="slow", start_s=10.0, duration_s=5.0)
    assert [is_on(once, t) for t in (9.9, 10.0, 14.9, 15.0, 40.0)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    every = once.model_copy(update={"every_s": 20.0})
    assert [is_on(every, t) for t in (9.0, 12.0, 16.0, 31.0, 36.0)] == [
        False,
        True,
        False,
        True,
        False,
    ]


def test_overlapping_episodes_combine() -> None:
    episodes = [
        DegradationEpisode(model="m", kind="slow", start_s=0, duration_s=10, factor=2.0),
        DegradationEpisode(model="m", kind="slow", start_s=5, duration_s=10, factor=3.0),
        DegradationEpisode(model="m", kind="errors", start_s=0, duration_s=10, rate=0.5),
        DegradationEpisode(model="m", kind="errors", start_s=5, duration_s=10, rate=0.5),
        DegradationEpisode(model="m", kind="rate_limit", start_s=0, duration_s=10, rate=0.2),
        DegradationEpisode(model="other", kind="slow", start_s=0, duration_s=10, factor=9.0),
    ]
    now = conditions_at(episodes, "m", 6.0)
    assert (now.latency_factor, now.error_rate) == (6.0, 0.75)
    assert now.rate_limit_rate == pytest.approx(0.2)
    assert conditions_at(episodes, "m", 12.0) == Conditions(3.0, 0.5, 0.0)
    assert conditions_at(episodes, "m", 20.0) == Conditions()


def plan(clock: FakeClock, seed: int = 3) -> SystemPlan:
    profiles = {"m": LatencyProfile(ttft_ms=200.0, tokens_per_s=50.0, requests_per_min=10)}
    episodes = [
        DegradationEpisode(model="m", kind="slow", start_s=60, duration_s=60, factor=4.0),
        DegradationEpisode(model="m", kind="errors", start_s=200, duration_s=60, rate=0.5),
        DegradationEpisode(model="m", kind="rate_limit", start_s=300, duration_s=60, rate=1.0),
    ]
    return SystemPlan(profiles, episodes, np.random.default_rng(seed), clock=clock)


def median(values: list[float]) -> float:
    return float(np.median(values))


def test_a_slow_episode_multiplies_the_wait_and_divides_the_pace() -> None:
    clock = FakeClock()
    system = plan(clock)
    before = [system.draw("m", 0.0) for _ in range(200)]
    clock.now += 70
    during = [system.draw("m", 0.0) for _ in range(200)]
    ttft = median([t.ttft_ms for t in before]), median([t.ttft_ms for t in during])
    pace = (
        median([t.tokens_per_s or 0 for t in before]),
        median([t.tokens_per_s or 0 for t in during]),
    )
    assert 170 < ttft[0] < 235  # the profile's median, jittered
    assert ttft[1] / ttft[0] == pytest.approx(4.0, rel=0.2)
    assert pace[0] / pace[1] == pytest.approx(4.0, rel=0.2)
    assert all(t.failure is None for t in before + during)


def test_error_bursts_and_rate_limits_follow_the_schedule_with_headers() -> None:
    clock = FakeClock()
    system = plan(clock)
    clock.now += 210
    burst = [system.draw("m", 0.0).failure for _ in range(400)]
    assert set(burst) == {None, "error"}
    assert burst.count("error") / len(burst) == pytest.approx(0.5, abs=0.08)
    clock.now += 100  # into the rate limit (the error burst is over)
    limited = system.draw("m", 0.0)
    assert limited.failure == "rate_limit"
    assert limited.headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "0",
    }
    clock.now += 120  # all over; the last minute holds no request
    calm = [system.draw("m", 0.0) for _ in range(3)]
    assert [t.headers["x-ratelimit-remaining-requests"] for t in calm] == ["9", "8", "7"]
    assert all(t.failure is None for t in calm)


def test_the_same_seed_and_clock_give_the_same_draws() -> None:
    runs = []
    for _ in range(2):
        clock = FakeClock()
        system = plan(clock, seed=11)
        draws = []
        for _ in range(50):
            clock.now += 7
            draws.append(system.draw("m", 0.0))
        runs.append(draws)
    assert runs[0] == runs[1]


def test_a_model_without_a_profile_keeps_the_pool_latency_times_the_factor() -> None:
    clock = FakeClock()
    episodes = [DegradationEpisode(model="x", kind="slow", start_s=0, duration_s=9, factor=3.0)]
    system = SystemPlan({}, episodes, np.random.default_rng(0), clock=clock)
    timing = system.draw("x", 20.0)
    assert (timing.ttft_ms, timing.tokens_per_s, timing.headers) == (60.0, None, {})


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_the_pool_serves_profiles_and_episodes(replay_matcher: PromptMatcher) -> None:
    clock = FakeClock()
    settings = replay_settings(
        profiles={
            MODEL: {
                "ttft_ms": 120.0,
                "tokens_per_s": 2000.0,
                "jitter": 0.0,
                "requests_per_min": 100,
            }
        },
        episodes=[
            {"model": MODEL, "kind": "errors", "start_s": 100, "duration_s": 10, "rate": 1.0},
            {"model": MODEL, "kind": "rate_limit", "start_s": 200, "duration_s": 10, "rate": 1.0},
        ],
        retry_after_s=3.0,
    )
    app = create_replay_app(settings, matcher=replay_matcher, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client:
        started = time.perf_counter()
        calm = await client.post("/v1/chat/completions", json=chat())
        waited_s = time.perf_counter() - started
        clock.now += 105
        error = await client.post("/v1/chat/completions", json=chat(stream=True))
        clock.now += 100
        limited = await client.post("/v1/chat/completions", json=chat())
    assert calm.status_code == 200
    assert waited_s >= 0.12
    assert calm.headers["x-ratelimit-limit-requests"] == "100"
    assert calm.headers["x-ratelimit-remaining-requests"] == "99"
    assert error.status_code == 500
    assert error.headers["x-replay-fault"] == "error"
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
