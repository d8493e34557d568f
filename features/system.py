"""System signals: the health of each arm and the spend of the caller, as feature values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    """A circuit breaker's state: closed (use), open (skip), half_open (one probe allowed)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class ArmHealth:
    """What the router currently knows of one arm's provider."""

    latency_ewma_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p50_ms: float | None = None
    """The arm's median latency over its recent calls: its usual speed."""
    error_rate: float = 0.0
    calls_in_window: int = 0
    rate_limit_headroom: float | None = None
    in_flight: int = 0
    circuit: CircuitState = CircuitState.CLOSED

    @property
    def available(self) -> bool:
        """Whether the arm may be chosen (its circuit is not open)."""
        return self.circuit is not CircuitState.OPEN


@dataclass(frozen=True)
class Spend:
    """Spend so far against optional budgets (USD)."""

    tenant_usd: float = 0.0
    tenant_budget_usd: float | None = None
    session_usd: float = 0.0
    session_budget_usd: float | None = None

    def budget_used(self) -> float:
        """The larger used fraction of the two budgets (0 when neither is set)."""
        fractions = [
            spent / budget
            for spent, budget in (
                (self.tenant_usd, self.tenant_budget_usd),
                (self.session_usd, self.session_budget_usd),
            )
            if budget
        ]
        return min(1.0, max(fractions)) if fractions else 0.0


DEGRADED_SLOWDOWN = 2.0
"""An arm whose latency EWMA is this many times its median or more is degraded (answers vary
in length, so an EWMA wanders around the median; twice it is a slowdown)."""
DEGRADED_ERROR_RATE = 0.1
DEGRADED_ERROR_MIN_CALLS = 10
"""Calls in the window before an error rate says anything: one transient failure among a
few calls is not a degraded arm."""
DEGRADED_HEADROOM = 0.05


def degraded(health: ArmHealth) -> bool:
    """Whether an arm is doing clearly worse than usual now: twice its usual latency or more,
    a tenth of its recent calls failed (of at least ten), its rate limit (nearly) reached,
    or its circuit half-open after a failure. A rule that rests on the arm's past rewards
    steps aside then: those rewards say nothing of how the arm is doing now."""
    ewma, median = health.latency_ewma_ms, health.latency_p50_ms
    return (
        (
            ewma is not None
            and median is not None
            and median > 0
            and ewma >= DEGRADED_SLOWDOWN * median
        )
        or (
            health.calls_in_window >= DEGRADED_ERROR_MIN_CALLS
            and health.error_rate >= DEGRADED_ERROR_RATE
        )
        or (
            health.rate_limit_headroom is not None
            and health.rate_limit_headroom <= DEGRADED_HEADROOM
        )
        or health.circuit is not CircuitState.CLOSED
    )


def health_features(health: ArmHealth) -> dict[str, float | str]:
    """Per-arm (action) features: slowdown, error rate, headroom, load, circuit.

    Latency enters as ``slowdown``, the log of the latency EWMA over the arm's own median:
    0 at its usual speed, log 2 when it is twice as slow. Not as an absolute latency: one
    weight is shared by every arm, and across arms the slow ones are often the strong ones,
    so a weight on absolute latency learns "slower is better" and raises the probability of
    an arm as it slows down. An arm's usual speed is a property of the arm (its identity
    features carry it, and the objective prices latency in the reward); what a degradation
    changes is its speed against its usual.
    """
    values: dict[str, float | str] = {
        "error_rate": round(health.error_rate, 4),
        "in_flight": round(math.log1p(health.in_flight), 4),
        "half_open": 1.0 if health.circuit is CircuitState.HALF_OPEN else 0.0,
    }
    ewma, median = health.latency_ewma_ms, health.latency_p50_ms
    if ewma is not None and median is not None and median > 0:
        values["slowdown"] = round(math.log(max(ewma, 1e-3) / median), 4)
    if health.rate_limit_headroom is not None:
        values["low_headroom"] = round(1.0 - health.rate_limit_headroom, 4)
    return values


def spend_features(spend: Spend) -> dict[str, float | str]:
    """Shared features: how much of the tightest budget is used."""
    return {"budget_used": round(spend.budget_used(), 4)}
