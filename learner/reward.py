"""Reward shaping: one number in [0, 1] from quality, cost and latency.

The objective is ``utility = quality - lambda_cost * norm_cost - lambda_latency *
norm_latency``, where each normalised term is ``min(1, value / reference)``: it lies in
``[-floor, 1]`` with ``floor = lambda_cost + lambda_latency`` (the largest penalty). The
reward is that utility mapped onto [0, 1] by the increasing affine map
``(utility + floor) / (1 + floor)``: 0 is a worthless answer at the largest cost and latency,
1 a perfect answer for free. An affine map keeps every comparison of expected utilities, so
a policy that maximises the reward maximises the utility.

It is not clipped at 0: clipping would make every wrong answer worth the same whatever it
cost, so an expensive arm's failures (or an escalation that fails) would look free, and the
expensive arm or the escalation would be favoured beyond what the objective says.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RewardWeights:
    """The objective: how much a unit of normalised cost and latency is worth in quality."""

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
        """The largest penalty: the utility of a worthless answer is at least ``-floor``."""
        return self.lambda_cost + self.lambda_latency


def utility(quality: float, cost_usd: float, latency_ms: float, weights: RewardWeights) -> float:
    """The objective itself, in ``[-weights.floor, 1]``; quality is in [0, 1]."""
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality must be in [0, 1], got {quality}")
    norm_cost = min(1.0, max(0.0, cost_usd) / weights.cost_ref_usd)
    norm_latency = min(1.0, max(0.0, latency_ms) / weights.latency_ref_ms)
    return quality - weights.lambda_cost * norm_cost - weights.lambda_latency * norm_latency


def shape_reward(
    quality: float, cost_usd: float, latency_ms: float, weights: RewardWeights
) -> float:
    """The reward of an outcome: its utility mapped affinely onto [0, 1] (module docstring)."""
    floor = weights.floor
    value = (utility(quality, cost_usd, latency_ms, weights) + floor) / (1.0 + floor)
    return min(1.0, max(0.0, value))  # only float rounding can leave [0, 1]
