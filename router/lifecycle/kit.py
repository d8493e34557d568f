"""What every stage of the lifecycle works with: the pool and its providers, arm health, the
decider, the judge, the RNG and the clock, with the two rules all stages share."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from features.errors import ProviderError, ProviderRateLimitedError, ProviderRejectedError
from features.system import ArmHealth
from learner.reward import shape_reward
from router.constraints import Eligibility, eligible_arms
from router.health import HealthTracker
from router.lifecycle.decisions import Decider
from router.lifecycle.judge import Judge
from router.lifecycle.state import Prepared
from router.pool import Pool
from router.providers import Provider

Clock = Callable[[], float]


@dataclass(frozen=True)
class StageKit:
    pool: Pool
    providers: Mapping[str, Provider]
    health: HealthTracker
    decider: Decider
    rng: np.random.Generator
    judge: Judge | None = None
    max_attempts: int = 3
    clock: Clock = field(default=time.perf_counter)

    def provider_failed(self, arm: str, error: ProviderError) -> None:
        """Tell the health tracker about a failed call. A 4xx (the provider refused this
        request) is not the arm's failure: it must not open the arm's circuit, or any
        request a provider rejects could shut the pool."""
        if isinstance(error, ProviderRejectedError):
            self.health.cancelled(arm)
            return
        limited = isinstance(error, ProviderRateLimitedError)
        retry_after = error.retry_after_s if isinstance(error, ProviderRateLimitedError) else None
        self.health.failed(arm, retry_after_s=retry_after, rate_limited=limited)

    def health_now(self) -> dict[str, ArmHealth]:
        return {name: self.health.snapshot(name) for name in self.pool.names}

    def eligibility(
        self, prep: Prepared, health: Mapping[str, ArmHealth], exclude: set[str]
    ) -> Eligibility:
        """The arms that may serve this request now, minus ``exclude``."""
        request = prep.request
        return eligible_arms(
            self.pool.arms,
            health,
            request.constraints,
            prep.query.tokens_est,
            request.max_tokens,
            exclude=frozenset(exclude),
        )

    def reward(self, prep: Prepared, quality: float, cost_usd: float, latency_ms: float) -> float:
        """The request's objective applied to one outcome."""
        return shape_reward(quality, cost_usd, latency_ms, prep.request.weights)
