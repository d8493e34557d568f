"""Anchoring a learned stage to the rule it generalizes: never worse than the rule, cold or warm.

A stage with an obvious rule (the escalation stage: accept an answer that passed its checks,
escalate a failed one to the strongest target; the pre-generation stage: send the request to
the arm with the best mean reward so far, as the best single model would be chosen) starts
from that rule and moves away from it only where the evidence says the move earns more. The
learned policy proposes its greedy action; the rule's action is kept unless, in the
decision's *bucket* (a coarse key such as "the judge rejected an answer of arm X"), both
actions have been rewarded at least ``min_evidence`` times and the proposal's mean reward
beats the rule's by ``z`` standard errors. Pooling rewards per bucket and action is a low-
variance estimate of exactly the comparison that decides the action, where the policy's
regression over many features follows the latest noisy verdicts.

While learning, a share ``explore_share`` of the probability follows the policy's own
exploration PMF, so alternatives to the rule keep being tried and the evidence can grow;
the PMF actually drawn from is what gets logged, so propensities stay exact for offline
evaluation. Scored frozen, the anchored action is taken outright.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from learner.sampling import greedy_pmf

LearningRule = Literal["best_mean", "upper_bound"]
LEARNING_RULES: tuple[LearningRule, ...] = get_args(LearningRule)
DEFAULT_LEARNING_RULE: LearningRule = "upper_bound"
"""The service's, the benchmark's and ``AnchorConfig``'s default."""


@dataclass(frozen=True)
class AnchorConfig:
    """How much evidence overrules the rule, and how much a learning stage explores."""

    min_evidence: int = 20
    z: float = 1.5
    explore_share: float = 0.1
    learning_rule: LearningRule = DEFAULT_LEARNING_RULE
    """How a "single best action" rule (pre-generation) picks while its stage learns:
    ``upper_bound`` (``Evidence.most_promising``) or ``best_mean`` (``Evidence.best_pooled``);
    frozen, it is always the best mean."""

    def __post_init__(self) -> None:
        if self.min_evidence < 1:
            raise ValueError("min_evidence must be >= 1")
        if not self.z >= 0:
            raise ValueError("z must be >= 0")
        if not 0.0 <= self.explore_share <= 1.0:
            raise ValueError("explore_share must lie in [0, 1]")
        if self.learning_rule not in LEARNING_RULES:
            raise ValueError(f"unknown learning_rule {self.learning_rule!r}")


DEFAULT_ANCHOR = AnchorConfig()


PAIRED_VARIANCE_FLOOR = 1e-4
"""The variance floor of paired differences: both rewards of a pair share the request's
luck, so their difference can be far steadier than either (a tenth of the unpaired floor's
standard deviation)."""


@dataclass
class _Tally:
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    floor: float = 0.01

    def add(self, reward: float) -> None:
        self.count += 1
        self.total += reward
        self.squares += reward * reward

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def variance(self) -> float:
        """Sample variance, with a floor so that a few identical rewards are not certainty."""
        if self.count < 2:
            return 0.25
        spread = (self.squares - self.count * self.mean**2) / (self.count - 1)
        return max(spread, self.floor)


@dataclass
class Evidence:
    """Rewards observed per (bucket, action), and per action over every bucket: what the
    anchor compares."""

    _tallies: dict[tuple[str, str], _Tally] = field(default_factory=dict)
    _pooled: dict[str, _Tally] = field(default_factory=dict)
    _pairs: dict[tuple[str, str, str], _Tally] = field(default_factory=dict)

    def add(self, bucket: str, action: str, reward: float) -> None:
        self._tallies.setdefault((bucket, action), _Tally()).add(reward)
        self._pooled.setdefault(action, _Tally()).add(reward)

    def add_pair(
        self, bucket: str, action: str, reward: float, other: str, other_reward: float
    ) -> None:
        """Both actions' rewards on one decision (the taken one's, and what the other would
        have earned, seen through it): each counts as ``add`` counts it, and ``beats``
        compares the two on their paired differences once there are enough of them."""
        self.add(bucket, action, reward)
        self.add(bucket, other, other_reward)
        difference = reward - other_reward
        self._pairs.setdefault((bucket, action, other), _Tally(floor=PAIRED_VARIANCE_FLOOR)).add(
            difference
        )
        self._pairs.setdefault((bucket, other, action), _Tally(floor=PAIRED_VARIANCE_FLOOR)).add(
            -difference
        )

    def best_pooled(self, actions: Sequence[str], config: AnchorConfig) -> str | None:
        """Of ``actions``, the one with the best mean reward over every bucket among those
        rewarded at least ``min_evidence`` times (None when none has been): the rule of a
        stage whose rule is "the single best action" (first of equals)."""
        supported = [
            a for a in actions if a in self._pooled and self._pooled[a].count >= config.min_evidence
        ]
        if not supported:
            return None
        return max(supported, key=lambda a: self._pooled[a].mean)

    def most_promising(self, actions: Sequence[str], config: AnchorConfig) -> str | None:
        """Of ``actions``, the one whose mean reward may be the highest: one never rewarded
        first (first of equals), else the highest mean plus ``z`` standard errors (None when
        ``actions`` is empty). The rule of a "single best action" stage while it learns: an
        action is no longer judged on its first few rewards while another, served on every
        request, piles up the evidence (``best_pooled`` stays the rule of a frozen stage)."""

        def bound(action: str) -> float:
            tally = self._pooled.get(action)
            if tally is None or tally.count == 0:
                return math.inf
            return tally.mean + config.z * math.sqrt(tally.variance / tally.count)

        return max(actions, key=bound) if actions else None

    def count(self, bucket: str, action: str) -> int:
        tally = self._tallies.get((bucket, action))
        return tally.count if tally else 0

    def mean(self, bucket: str, action: str) -> float | None:
        tally = self._tallies.get((bucket, action))
        return tally.mean if tally and tally.count else None

    def beats(self, bucket: str, challenger: str, incumbent: str, config: AnchorConfig) -> bool:
        """Whether ``challenger`` has earned more than ``incumbent`` in ``bucket`` by ``z``
        standard errors, each with at least ``min_evidence`` rewards; on their paired
        differences (``add_pair``) when at least ``min_evidence`` pairs were seen."""
        pair = self._pairs.get((bucket, challenger, incumbent))
        if pair is not None and pair.count >= config.min_evidence:
            return pair.mean > config.z * math.sqrt(pair.variance / pair.count)
        a = self._tallies.get((bucket, challenger))
        b = self._tallies.get((bucket, incumbent))
        if a is None or b is None or min(a.count, b.count) < config.min_evidence:
            return False
        error = math.sqrt(a.variance / a.count + b.variance / b.count)
        return a.mean - b.mean > config.z * error


def anchored_pmf(
    policy_pmf: Sequence[float],
    actions: Sequence[str],
    rule: str,
    bucket: str,
    evidence: Evidence,
    config: AnchorConfig,
    *,
    explore: bool,
) -> list[float]:
    """The PMF a rule-anchored stage draws from (module docstring): all mass on the rule's
    action, or on the policy's greedy action where the evidence says it earns more; while
    exploring, ``explore_share`` of the mass spread as the policy's PMF spreads it."""
    if len(policy_pmf) != len(actions):
        raise ValueError("one probability per action is needed")
    if rule not in actions:
        raise ValueError(f"the rule's action {rule!r} is not among the actions")
    greedy = greedy_pmf(policy_pmf)
    proposal = actions[
        max(range(len(actions)), key=lambda i: (greedy[i], i == actions.index(rule)))
    ]
    chosen = proposal if evidence.beats(bucket, proposal, rule, config) else rule
    onehot = [1.0 if action == chosen else 0.0 for action in actions]
    if not explore:
        return onehot
    share = config.explore_share
    return [(1.0 - share) * o + share * p for o, p in zip(onehot, policy_pmf, strict=True)]
