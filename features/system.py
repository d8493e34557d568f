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


def health_features(health: ArmHealth) -> dict[str, float | str]:
    """Per-arm (action) features: log latency, error rate, headroom, load, circuit."""
    values: dict[str, float | str] = {
        "error_rate": round(health.error_rate, 4),
        "in_flight": round(math.log1p(health.in_flight), 4),
        "half_open": 1.0 if health.circuit is CircuitState.HALF_OPEN else 0.0,
    }
    if health.latency_ewma_ms is not None:
        values["log_latency"] = round(math.log1p(health.latency_ewma_ms / 1000.0), 4)
    if health.latency_p95_ms is not None:
        values["log_p95"] = round(math.log1p(health.latency_p95_ms / 1000.0), 4)
    if health.rate_limit_headroom is not None:
        values["low_headroom"] = round(1.0 - health.rate_limit_headroom, 4)
    return values


def spend_features(spend: Spend) -> dict[str, float | str]:
    """Shared features: how much of the tightest budget is used."""
    return {"budget_used": round(spend.budget_used(), 4)}
