import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from features.historical import summarize
from features.system import (
    ArmHealth,
    CircuitState,
    Spend,
    degraded,
    health_features,
    spend_features,
)


@dataclass(frozen=True)
class NeighbourOutcome:
    """A ``PastOutcome`` as the store returns it, reduced to what ``summarize`` reads."""

    request_id: str
    distance: float
    arm: str
    reward: float | None
    created_at: datetime


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_summarize_weights_rewards_by_similarity() -> None:
    rows = [
        NeighbourOutcome("r1", distance=0.1, arm="a", reward=1.0, created_at=ago(0)),
        NeighbourOutcome("r2", distance=0.9, arm="a", reward=0.0, created_at=ago(86_400)),
        NeighbourOutcome("r3", distance=0.2, arm="b", reward=None, created_at=ago(10)),
        NeighbourOutcome("r4", distance=0.5, arm="c", reward=1.0, created_at=ago(86_400)),
    ]
    signals = summarize(rows, NOW)
    assert signals.neighbours == 4
    assert signals.mean_similarity == pytest.approx((0.9 + 0.1 + 0.8 + 0.5) / 4)
    history = signals.arms["a"]
    assert history.count == 2
    assert history.mean_reward == pytest.approx(0.9 / (0.9 + 0.1))
    assert history.recency == pytest.approx(1.0)  # its newest reward is from now
    assert signals.arms["c"].recency == pytest.approx(0.5)  # one half-life ago
    mean = history.mean_reward  # the spread is weighted as the mean is
    assert history.spread == pytest.approx(math.sqrt(0.9 * (1 - mean) ** 2 + 0.1 * mean**2))
    assert signals.arms["c"].spread == 0.0  # a single reward
    assert "b" not in signals.arms
    assert signals.arm_features("b") == {"unseen": 1.0}
    assert signals.arm_features("a", prefix="u_")["u_log_count"] == round(math.log1p(2), 4)


def test_summarize_of_nothing_is_empty() -> None:
    signals = summarize([], NOW)
    assert signals.neighbours == 0
    assert signals.shared_features()["neighbours"] == 0.0


def test_health_and_spend_features() -> None:
    health = ArmHealth(
        latency_ewma_ms=1000.0,
        latency_p50_ms=500.0,
        error_rate=0.25,
        rate_limit_headroom=0.1,
        circuit=CircuitState.HALF_OPEN,
    )
    features = health_features(health)
    assert features["error_rate"] == 0.25
    assert features["low_headroom"] == pytest.approx(0.9)
    assert features["half_open"] == 1.0
    assert features["slowdown"] == round(math.log(2.0), 4)
    assert "slowdown" not in health_features(ArmHealth(latency_ewma_ms=1000.0))
    assert not ArmHealth(circuit=CircuitState.OPEN).available
    spend = Spend(tenant_usd=5.0, tenant_budget_usd=10.0, session_usd=0.9, session_budget_usd=1.0)
    assert spend_features(spend)["budget_used"] == pytest.approx(0.9)
    assert Spend().budget_used() == 0.0


def test_an_arm_is_degraded_when_slower_failing_or_rate_limited_now() -> None:
    usual = ArmHealth(latency_ewma_ms=500.0, latency_p50_ms=500.0, rate_limit_headroom=0.5)
    assert not degraded(usual)
    assert not degraded(ArmHealth())
    assert degraded(replace(usual, latency_ewma_ms=1000.0))
    assert not degraded(replace(usual, latency_ewma_ms=990.0))
    assert not degraded(ArmHealth(latency_ewma_ms=0.0, latency_p50_ms=0.0))  # no latencies known
    assert degraded(replace(usual, error_rate=0.1, calls_in_window=10))
    assert not degraded(replace(usual, error_rate=0.2, calls_in_window=5))  # one failure of 5
    assert degraded(replace(usual, rate_limit_headroom=0.0))
    assert degraded(replace(usual, circuit=CircuitState.HALF_OPEN))
