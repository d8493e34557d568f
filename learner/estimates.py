"""What a policy learned, per arm: its own prediction on the contexts it saw, beside what
those decisions earned.

Pure: the policy comes in as anything with ``scores`` (a ``VWPolicy``), the logged decisions
as plain values. For each arm, over a window of logged decisions:

- ``share``: the fraction of the decisions that chose it (what was routed);
- ``probability``: the policy's mean probability for it now, on the same contexts (0 where
  it was not eligible): what it would route if the same traffic came again;
- ``estimated_reward``: the policy's mean estimated reward for it, over the contexts where it
  was eligible (its reward model's prediction, ``VWPolicy.scores``);
- ``observed_reward``: the mean reward of the decisions that chose it and were rewarded.

After feedback that favours an arm, its estimate rises above the others' and so does its
probability; an estimate far from the observed reward says the model has not converged (or
cannot tell the contexts apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from learner.context import Context
from learner.vw_policy import ArmScores


class Scorer(Protocol):
    """A policy that predicts a context's PMF and per-arm rewards (a ``VWPolicy``)."""

    def scores(self, context: Context) -> ArmScores: ...


@dataclass(frozen=True)
class LoggedOutcome:
    """A logged decision: the context it was made in, the arm drawn, and its mean reward
    (None while no reward came)."""

    context: Context
    chosen_arm: str
    reward: float | None


@dataclass(frozen=True)
class ArmEstimate:
    """One arm over a window of decisions (see the module docstring for each number)."""

    arm: str
    decisions: int
    """How many decisions of the window chose it."""
    share: float
    eligible: int
    """How many decisions of the window could choose it."""
    probability: float
    estimated_reward: float | None
    """None when it was never eligible."""
    rewarded: int
    """How many of its decisions have a reward."""
    observed_reward: float | None
    """None when none of its decisions has a reward yet."""


class _Tally:
    def __init__(self) -> None:
        self.chosen = 0
        self.eligible = 0
        self.probability = 0.0
        self.estimate = 0.0
        self.rewarded = 0
        self.reward = 0.0


def arm_estimates(
    scorer: Scorer, outcomes: Sequence[LoggedOutcome], *, arms: Iterable[str] = ()
) -> list[ArmEstimate]:
    """Per arm, the policy's probability and estimated reward on the logged contexts, and
    the share and observed reward of the decisions. Arms come in ``arms`` order first (arms
    the window never saw get zeros and None), then in order of first appearance."""
    tallies: dict[str, _Tally] = {arm: _Tally() for arm in arms}
    for outcome in outcomes:
        scores = scorer.scores(outcome.context)
        for arm, probability, estimate in zip(scores.arms, scores.pmf, scores.rewards, strict=True):
            tally = tallies.setdefault(arm, _Tally())
            tally.eligible += 1
            tally.probability += probability
            tally.estimate += estimate
        chosen = tallies.setdefault(outcome.chosen_arm, _Tally())
        chosen.chosen += 1
        if outcome.reward is not None:
            chosen.rewarded += 1
            chosen.reward += outcome.reward
    total = len(outcomes)
    return [
        ArmEstimate(
            arm=arm,
            decisions=t.chosen,
            share=t.chosen / total if total else 0.0,
            eligible=t.eligible,
            probability=t.probability / total if total else 0.0,
            estimated_reward=t.estimate / t.eligible if t.eligible else None,
            rewarded=t.rewarded,
            observed_reward=t.reward / t.rewarded if t.rewarded else None,
        )
        for arm, t in tallies.items()
    ]
