"""Historical signals: how each arm did on the nearest past requests (from pgvector).

The input is one row per (neighbour, arm decided for it) with the reward it earned, if any;
the output is, per arm, a similarity-weighted mean reward, a count and a recency, plus the
neighbourhood's size and closeness as shared features.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class PastOutcome(Protocol):
    """One past request near the query, the arm that served it, and its reward (None: none
    yet); the store's look-up rows are these as they come."""

    @property
    def request_id(self) -> Hashable: ...

    @property
    def distance(self) -> float: ...

    @property
    def arm(self) -> str: ...

    @property
    def reward(self) -> float | None: ...

    @property
    def created_at(self) -> datetime: ...


@dataclass(frozen=True)
class ArmHistory:
    mean_reward: float
    count: int
    recency: float
    spread: float = 0.0
    """Similarity-weighted standard deviation of the rewards (0 for a single one)."""


@dataclass(frozen=True)
class HistoricalSignals:
    """Per-arm outcomes among the neighbours, and the neighbourhood itself."""

    neighbours: int = 0
    mean_similarity: float = 0.0
    arms: dict[str, ArmHistory] = field(default_factory=dict)
    missing: bool = False
    """True when the history could not be read (the store was down)."""

    def shared_features(self, prefix: str = "") -> dict[str, float | str]:
        values: dict[str, float | str] = {
            f"{prefix}neighbours": round(math.log1p(self.neighbours), 4),
            f"{prefix}similarity": round(self.mean_similarity, 4),
        }
        if self.missing:
            values[f"{prefix}missing"] = 1.0
        return values

    def arm_features(self, arm: str, prefix: str = "") -> dict[str, float | str]:
        """Features of one arm; an arm never seen nearby gets ``unseen``."""
        history = self.arms.get(arm)
        if history is None:
            return {f"{prefix}unseen": 1.0}
        return {
            f"{prefix}mean_reward": round(history.mean_reward, 4),
            f"{prefix}log_count": round(math.log1p(history.count), 4),
            f"{prefix}recency": round(history.recency, 4),
        }


def summarize(
    outcomes: Iterable[PastOutcome], now: datetime, half_life_s: float = 86_400.0
) -> HistoricalSignals:
    """Aggregate neighbour outcomes; rows without a reward count as neighbours only.

    Similarity is ``1 - cosine distance``; means are weighted by ``max(similarity, 0.05)``;
    recency is ``exp(-age / half_life * ln 2)`` of the arm's most recent rewarded neighbour,
    its age counted up to ``now`` (timezone-aware, as the store's timestamps are).
    """
    rows = list(outcomes)
    if not rows:
        return HistoricalSignals()
    similarity_by_request = {row.request_id: 1.0 - row.distance for row in rows}
    weights: dict[str, float] = {}
    weighted: dict[str, float] = {}
    squares: dict[str, float] = {}
    counts: dict[str, int] = {}
    newest: dict[str, datetime] = {}
    for row in rows:
        if row.reward is None:
            continue
        weight = max(1.0 - row.distance, 0.05)
        weights[row.arm] = weights.get(row.arm, 0.0) + weight
        weighted[row.arm] = weighted.get(row.arm, 0.0) + weight * row.reward
        squares[row.arm] = squares.get(row.arm, 0.0) + weight * row.reward * row.reward
        counts[row.arm] = counts.get(row.arm, 0) + 1
        newest_at = newest.get(row.arm)
        if newest_at is None or row.created_at > newest_at:
            newest[row.arm] = row.created_at
    decay = math.log(2) / half_life_s
    arms = {
        arm: ArmHistory(
            mean_reward=weighted[arm] / weights[arm],
            count=counts[arm],
            recency=math.exp(-max(0.0, (now - newest[arm]).total_seconds()) * decay),
            spread=_spread(weights[arm], weighted[arm], squares[arm]),
        )
        for arm in weights
    }
    similarities = list(similarity_by_request.values())
    return HistoricalSignals(
        neighbours=len(similarities),
        mean_similarity=sum(similarities) / len(similarities),
        arms=arms,
    )


def _spread(weight: float, weighted: float, squares: float) -> float:
    """Weighted standard deviation from the sums of weights, weighted values and weighted
    squares (float noise below 0 counts as 0)."""
    mean = weighted / weight
    return math.sqrt(max(0.0, squares / weight - mean * mean))
