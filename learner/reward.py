"""Reward shaping: one number in [0, 1] from quality, cost and latency.

``reward = quality - lambda_cost * norm_cost - lambda_latency * norm_latency``, clipped to
[0, 1], where each normalised term is ``min(1, value / reference)``. The references make the
weights comparable across pools (``cost_ref_usd``: what a costly call costs in this pool).
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


def shape_reward(
    quality: float, cost_usd: float, latency_ms: float, weights: RewardWeights
) -> float:
    """The reward of an outcome; quality is in [0, 1] (validators, judge or user)."""
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality must be in [0, 1], got {quality}")
    norm_cost = min(1.0, max(0.0, cost_usd) / weights.cost_ref_usd)
    norm_latency = min(1.0, max(0.0, latency_ms) / weights.latency_ref_ms)
    reward = quality - weights.lambda_cost * norm_cost - weights.lambda_latency * norm_latency
    return min(1.0, max(0.0, reward))
