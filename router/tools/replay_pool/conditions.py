"""System conditions of the replay pool: how fast each model answers now, and the degradation
episodes it is going through (slowing down, error bursts, rate limits).

A model with a ``LatencyProfile`` waits a time to first token and streams at a pace, both
drawn log-normally around the profile's medians; a ``DegradationEpisode`` that is on
multiplies the wait and divides the pace by its ``factor`` (``slow``), or fails a share of the
model's requests with HTTP 500 (``errors``) or 429 (``rate_limit``). A model with a
``requests_per_min`` reports ``x-ratelimit-{limit,remaining}-requests`` headers: the limit
less its requests of the last minute, scaled down during a rate-limit episode.

Time is seconds since the plan was made, from an injected clock; draws come from an injected
Generator (not the fault plan's, so the sequence of seeded faults stays what it was), so a
test with a fake clock sees the same conditions on every run.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from router.settings import DegradationEpisode, LatencyProfile
from router.tools.replay_pool.faults import FaultKind

Clock = Callable[[], float]
RATE_WINDOW_S = 60.0
"""The window ``requests_per_min`` counts requests over."""


@dataclass(frozen=True, slots=True)
class Conditions:
    """What the active episodes do to one model now (no episode: all neutral)."""

    latency_factor: float = 1.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0


def is_on(episode: DegradationEpisode, elapsed_s: float) -> bool:
    """Whether ``episode`` is on ``elapsed_s`` seconds after the start (repeats included)."""
    since = elapsed_s - episode.start_s
    if since < 0:
        return False
    if episode.every_s is not None:
        since = math.fmod(since, episode.every_s)
    return since < episode.duration_s


def conditions_at(
    episodes: Iterable[DegradationEpisode], model: str, elapsed_s: float
) -> Conditions:
    """The conditions of ``model`` at ``elapsed_s``: overlapping slow spells multiply, error
    and rate-limit shares combine as independent failures."""
    factor, no_error, no_limit = 1.0, 1.0, 1.0
    for episode in episodes:
        if episode.model != model or not is_on(episode, elapsed_s):
            continue
        if episode.kind == "slow":
            factor *= episode.factor
        elif episode.kind == "errors":
            no_error *= 1.0 - episode.rate
        else:
            no_limit *= 1.0 - episode.rate
    return Conditions(factor, 1.0 - no_error, 1.0 - no_limit)


@dataclass(frozen=True, slots=True)
class Timing:
    """One request's system outcome: how long it takes, whether an episode fails it
    (``"error"``, ``"rate_limit"`` or None), and the rate-limit headers it carries."""

    ttft_ms: float
    tokens_per_s: float | None
    failure: FaultKind | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class SystemPlan:
    """Draws each request's ``Timing`` from the profiles and the episodes; thread-safe."""

    def __init__(
        self,
        profiles: Mapping[str, LatencyProfile],
        episodes: Iterable[DegradationEpisode],
        rng: np.random.Generator,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._profiles = dict(profiles)
        self._episodes = tuple(episodes)
        self._rng = rng
        self._clock = clock
        self._start = clock()
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, episodes: Iterable[DegradationEpisode]) -> None:
        """Schedule more episodes (times still count from the plan's start): a benchmark
        degrades the arm that turned out to be the favourite."""
        with self._lock:
            self._episodes = (*self._episodes, *episodes)

    @property
    def active(self) -> bool:
        """Whether any model has a profile or an episode (else ``draw`` is never needed)."""
        return bool(self._profiles or self._episodes)

    def elapsed_s(self) -> float:
        """Seconds since the plan was made."""
        return self._clock() - self._start

    def conditions(self, model: str) -> Conditions:
        """``model``'s conditions now."""
        return conditions_at(self._episodes, model, self.elapsed_s())

    def draw(self, model: str, default_latency_ms: float) -> Timing:
        """The next request to ``model``: three uniforms drawn whatever the model, so the
        sequence depends only on the seed and the number of requests."""
        with self._lock:
            now = self._clock()
            jitter_ttft, jitter_pace = (float(x) for x in self._rng.standard_normal(2))
            failure_uniform = float(self._rng.random())
            conditions = conditions_at(self._episodes, model, now - self._start)
            calls = self._calls.setdefault(model, deque())
            while calls and calls[0] <= now - RATE_WINDOW_S:
                calls.popleft()
            calls.append(now)
            used = len(calls)
        failure: FaultKind | None = None
        if failure_uniform < conditions.error_rate:
            failure = "error"
        elif failure_uniform < conditions.error_rate + conditions.rate_limit_rate * (
            1.0 - conditions.error_rate
        ):
            failure = "rate_limit"
        profile = self._profiles.get(model)
        if profile is None:
            return Timing(default_latency_ms * conditions.latency_factor, None, failure)
        ttft_ms = profile.ttft_ms * math.exp(profile.jitter * jitter_ttft)
        pace = profile.tokens_per_s * math.exp(profile.jitter * jitter_pace)
        headers: dict[str, str] = {}
        if profile.requests_per_min is not None:
            limit = profile.requests_per_min
            remaining = max(0, limit - used) * (1.0 - conditions.rate_limit_rate)
            if failure == "rate_limit":
                remaining = 0
            headers = {
                "x-ratelimit-limit-requests": str(limit),
                "x-ratelimit-remaining-requests": str(math.floor(remaining)),
            }
        return Timing(
            ttft_ms * conditions.latency_factor,
            pace / conditions.latency_factor,
            failure,
            headers,
        )
