"""Which way each system signal moves a learned policy: what-if re-scoring of logged contexts.

For an arm's own health signal (latency against its usual, error rate, rate-limit headroom),
every arm of every context is given a low and then a high value of that signal, the rest of
the context unchanged, and the arm's probability under the policy is compared: the effect is
the mean of ``p(high) - p(low)``. A policy that learned the signal moves probability away
from an arm as its latency, its error rate or its lack of headroom rises: the effect is
negative. For the budget (a shared signal), the whole context is given a low and a high
``budget_used`` and the expected price of the drawn arm (``sum p(arm) * price(arm)``) is
compared: a policy that learned budget pressure draws cheaper arms as the budget runs down,
a negative effect.

The feature names and encodings are ``features.system``'s (``health_features``,
``spend_features``). Pure: the policy is any ``PMFSource``; nothing is learned here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from features.system import ArmHealth, health_features
from learner.context import Context, Namespace
from learner.inspection import PMFSource, with_arm, with_shared

HEALTH = "S"
HISTORY = "H"


@dataclass(frozen=True)
class SignalEffect:
    """The measured effect of one signal from ``low`` to ``high`` (see the module docstring);
    ``right`` is whether its sign is the one the objective calls for (negative)."""

    signal: str
    low: float
    high: float
    effect: float
    measure: str
    contexts: int

    @property
    def right(self) -> bool:
        return self.effect < 0

    def row(self) -> dict[str, str | float | bool]:
        return {
            "signal": self.signal,
            "low": self.low,
            "high": self.high,
            "effect": self.effect,
            "measure": self.measure,
            "right_sign": self.right,
        }


def latency_values(latency_ms: float, median_ms: float) -> Namespace:
    """The latency feature of an arm whose EWMA is ``latency_ms`` and whose usual (median)
    latency is ``median_ms``, as ``health_features`` writes it."""
    values = health_features(ArmHealth(latency_ewma_ms=latency_ms, latency_p50_ms=median_ms))
    return {"slowdown": values["slowdown"]}


def error_values(error_rate: float) -> Namespace:
    return {"error_rate": health_features(ArmHealth(error_rate=error_rate))["error_rate"]}


def headroom_values(headroom: float) -> Namespace:
    values = health_features(ArmHealth(rate_limit_headroom=headroom))
    return {"low_headroom": values["low_headroom"]}


def arm_signal_effect(
    source: PMFSource,
    contexts: Sequence[Context],
    values: Callable[[float], Namespace],
    low: float,
    high: float,
) -> float:
    """Mean over every arm of every context of its probability with ``values(high)`` in its
    health namespace minus with ``values(low)``; 0.0 for no arms."""
    differences: list[float] = []
    for context in contexts:
        for index, arm in enumerate(context.arms):
            probabilities = []
            for value in (low, high):
                changed = with_arm(context, arm.arm, HEALTH, values(value))
                probabilities.append(source.pmf(changed)[index])
            differences.append(probabilities[1] - probabilities[0])
    return sum(differences) / len(differences) if differences else 0.0


def budget_effect(
    source: PMFSource,
    contexts: Sequence[Context],
    price: Mapping[str, float],
    low: float,
    high: float,
) -> float:
    """Mean over contexts of the expected ``price`` of the drawn arm at ``budget_used`` =
    ``high`` minus at ``low`` (arms missing from ``price`` count as free)."""
    differences: list[float] = []
    for context in contexts:
        expected = []
        for value in (low, high):
            pmf = source.pmf(with_shared(context, HISTORY, {"budget_used": value}))
            expected.append(
                sum(p * price.get(arm, 0.0) for p, arm in zip(pmf, context.arm_names, strict=True))
            )
        differences.append(expected[1] - expected[0])
    return sum(differences) / len(differences) if differences else 0.0


def system_signal_effects(
    source: PMFSource,
    contexts: Sequence[Context],
    price: Mapping[str, float],
    *,
    latency_ms: tuple[float, float] = (300.0, 3000.0),
    error_rate: tuple[float, float] = (0.0, 0.4),
    headroom: tuple[float, float] = (1.0, 0.0),
    budget_used: tuple[float, float] = (0.0, 0.9),
) -> list[SignalEffect]:
    """The effect of latency, error rate, lack of rate-limit headroom and budget use on
    ``source``, over ``contexts``. The error-rate range stays below the rate that opens a
    circuit by default (0.5), so the policy alone is measured, not the breaker."""
    count = len(contexts)
    arm_measure = "mean change of the arm's probability"
    low_headroom = 1.0 - headroom[0], 1.0 - headroom[1]
    return [
        SignalEffect(
            "latency_ms",
            *latency_ms,
            arm_signal_effect(
                source, contexts, lambda ms: latency_values(ms, latency_ms[0]), *latency_ms
            ),
            arm_measure,
            count,
        ),
        SignalEffect(
            "error_rate",
            *error_rate,
            arm_signal_effect(source, contexts, error_values, *error_rate),
            arm_measure,
            count,
        ),
        SignalEffect(
            "low_headroom",
            *low_headroom,
            arm_signal_effect(
                source, contexts, lambda low: headroom_values(1.0 - low), *low_headroom
            ),
            arm_measure,
            count,
        ),
        SignalEffect(
            "budget_used",
            *budget_used,
            budget_effect(source, contexts, price, *budget_used),
            "change of the expected price of the drawn arm",
            count,
        ),
    ]
