"""Reward shaping: one number in [0, 1] from quality, cost and latency.

The objective is ``utility = quality - lambda_cost * cost_term - lambda_latency *
latency_term``. Each term is ``value / (value + reference)``: 0 for free, one half at the
reference, approaching 1 but never reaching it. It is strictly increasing over every cost
and latency, so a $0.50 request always looks worse than a $0.02 one and a dearer arm never
looks as cheap as a cheaper one, however far both lie above the reference (a term capped at
the reference would make every request dearer than it equally expensive, and an escalation
to a dearer, worse model look free). Near zero the term is ``value / reference``: the first
``cost_ref_usd`` dollars of a request are worth about ``lambda_cost`` of quality, and each
further dollar a little less (``marginal_usd_per_quality`` says how much exactly).

The utility lies in ``[-floor, 1]`` with ``floor = lambda_cost + lambda_latency`` (the
largest penalty). The reward is that utility mapped onto [0, 1] by the increasing affine map
``(utility + floor) / (1 + floor)``: 0 is a worthless answer at an unbounded cost and
latency, 1 a perfect answer for free. An affine map keeps every comparison of expected
utilities, so a policy that maximises the reward maximises the utility.

It is not clipped at 0: clipping would make every wrong answer worth the same whatever it
cost, so an expensive arm's failures (or an escalation that fails) would look free, and the
expensive arm or the escalation would be favoured beyond what the objective says.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RewardWeights:
    """The objective: how much quality a request's cost and latency are worth.

    ``lambda_cost`` is the quality a request costing ``cost_ref_usd`` gives up, twice over:
    at the reference the penalty is ``lambda_cost / 2``; near zero each ``cost_ref_usd``
    spent costs ``lambda_cost`` of quality. Likewise for latency.
    """

    lambda_cost: float = 0.3
    lambda_latency: float = 0.05
    cost_ref_usd: float = 0.01
    latency_ref_ms: float = 10_000.0

    def __post_init__(self) -> None:
        if self.lambda_cost < 0 or self.lambda_latency < 0:
            raise ValueError("reward weights must be non-negative")
        if self.cost_ref_usd <= 0 or self.latency_ref_ms <= 0:
            raise ValueError("reward references must be positive")

    @property
    def floor(self) -> float:
        """The largest penalty: the utility of a worthless answer is above ``-floor``."""
        return self.lambda_cost + self.lambda_latency


def saturating(value: float, reference: float) -> float:
    """``value / (value + reference)`` for ``value >= 0`` (negatives count as 0): in [0, 1),
    strictly increasing, one half at the reference."""
    value = max(0.0, value)
    return value / (value + reference)


def utility(quality: float, cost_usd: float, latency_ms: float, weights: RewardWeights) -> float:
    """The objective itself, in ``(-weights.floor, 1]``; quality is in [0, 1]."""
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality must be in [0, 1], got {quality}")
    return (
        quality
        - weights.lambda_cost * saturating(cost_usd, weights.cost_ref_usd)
        - weights.lambda_latency * saturating(latency_ms, weights.latency_ref_ms)
    )


def shape_reward(
    quality: float, cost_usd: float, latency_ms: float, weights: RewardWeights
) -> float:
    """The reward of an outcome: its utility mapped affinely onto [0, 1] (module docstring)."""
    floor = weights.floor
    value = (utility(quality, cost_usd, latency_ms, weights) + floor) / (1.0 + floor)
    return min(1.0, max(0.0, value))  # only float rounding can leave [0, 1]


def marginal_usd_per_quality(cost_usd: float, weights: RewardWeights) -> float:
    """Dollars one more unit of quality is worth to the objective at a request cost of
    ``cost_usd``: the inverse slope of the cost penalty there (infinite when cost is not
    priced). At zero it is ``cost_ref_usd / lambda_cost``; it grows with the cost."""
    if weights.lambda_cost == 0:
        return float("inf")
    ref = weights.cost_ref_usd
    slope = weights.lambda_cost * ref / (max(0.0, cost_usd) + ref) ** 2
    return 1.0 / slope
