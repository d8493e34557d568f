"""Candidate policies, as what OPE needs of them: a probability for every (round, arm).

``probabilities(log, progress)`` returns an (n, K) matrix over the log's arm columns: each
row sums to 1 and is 0 on arms that were not eligible in that round (a candidate chooses
among the arms the router offered, as it would have if deployed).

* ``LoggingPolicy``: the logged PMFs themselves (its IPS estimate is the logged mean reward).
* ``StaticPolicy``: the first eligible arm of a preference list ("always gpt-4"), else
  uniform over the eligible arms; ``StaticPolicy("uniform", ())`` is the uniform policy.
* ``TaskRulePolicy``: the task-level rule, an arm per query category (the category is the
  highest ``cat_*`` similarity of the query namespace), with a default arm.
* ``FrozenVWPolicy``: a VW policy as it is (a deployed snapshot, a counterfactually trained
  model), asked for its PMF on every logged context.
* ``SupportRestricted``: any candidate with its probability on arms the logging policy
  never explored in a round (probability 0) moved, proportionally, onto the explored ones:
  the part of a policy that the log can actually judge.
* ``ProgressiveVWPolicy``: a VW policy with other arguments or reward weights, started cold
  (or warm on training rounds) that predicts each round before learning from it, as it would
  have learned online from the same feedback (progressive validation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from learner.config import PolicyConfig
from learner.context import Context
from learner.ope.log import BanditLog, FloatArray, LoggedDecision
from learner.ope.progress import SILENT, Progress
from learner.reward import RewardWeights, shape_reward
from learner.vw_policy import VWPolicy


class Candidate(Protocol):
    """A policy to evaluate on a log."""

    @property
    def name(self) -> str: ...

    def probabilities(self, log: BanditLog, progress: Progress) -> FloatArray: ...


def check_probabilities(log: BanditLog, name: str, pmf: FloatArray) -> None:
    """Raise ValueError unless ``pmf`` is a valid (n, K) candidate matrix for ``log``."""
    if pmf.shape != (len(log), len(log.arms)):
        raise ValueError(
            f"candidate {name}: shape {pmf.shape}, expected {(len(log), len(log.arms))}"
        )
    if np.any(pmf < -1e-9) or not np.all(np.isfinite(pmf)):
        raise ValueError(f"candidate {name}: probabilities must be finite and >= 0")
    if np.any(pmf[~log.eligible] > 1e-9):
        raise ValueError(f"candidate {name}: puts probability on arms that were not eligible")
    if len(log) and not np.allclose(pmf.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError(f"candidate {name}: a row of probabilities does not sum to 1")


def training_reward(decision: LoggedDecision, weights: RewardWeights | None) -> float:
    """The reward a candidate learns from: the logged one, or the logged outcome re-shaped
    with ``weights``. Raises ValueError when re-weighting a decision logged without one."""
    if weights is None:
        return decision.reward
    outcome = decision.outcome
    if outcome is None:
        raise ValueError(
            f"decision {decision.decision_id} has no logged outcome (quality, cost_usd, "
            "latency_ms), so its reward cannot be re-shaped with other weights"
        )
    return shape_reward(outcome.quality, outcome.cost_usd, outcome.latency_ms, weights)


@dataclass(frozen=True)
class LoggingPolicy:
    """The logging policy itself: a sanity baseline (IPS = SNIPS = logged mean reward)."""

    name: str = "logging"

    def probabilities(self, log: BanditLog, progress: Progress = SILENT) -> FloatArray:
        pmf = log.logging_pmf.copy()
        totals = pmf.sum(axis=1, keepdims=True)
        normalised: FloatArray = np.divide(pmf, totals, out=np.zeros_like(pmf), where=totals > 0)
        return normalised


def _uniform_rows(log: BanditLog, rows: np.ndarray) -> FloatArray:
    eligible = log.eligible[rows].astype(np.float64)
    uniform: FloatArray = eligible / eligible.sum(axis=1, keepdims=True)
    return uniform


@dataclass(frozen=True)
class StaticPolicy:
    """The first eligible arm of ``preferences`` in every round; uniform when none is."""

    name: str
    preferences: tuple[str, ...]

    def probabilities(self, log: BanditLog, progress: Progress = SILENT) -> FloatArray:
        pmf = np.zeros((len(log), len(log.arms)))
        assigned = np.zeros(len(log), dtype=np.bool_)
        for arm in self.preferences:
            column = log.arm_column(arm)
            if column is None:
                continue
            rows = ~assigned & log.eligible[:, column]
            pmf[rows, column] = 1.0
            assigned |= rows
        rest = ~assigned
        if rest.any():
            pmf[rest] = _uniform_rows(log, rest)
        return pmf


def top_category(context: Context, namespace: str = "Q", prefix: str = "cat_") -> str | None:
    """The query category with the highest similarity, or None when there are none."""
    values = context.shared.get(namespace, {})
    scores = {
        key[len(prefix) :]: float(value)
        for key, value in values.items()
        if key.startswith(prefix) and not isinstance(value, str)
    }
    if not scores:
        return None
    return max(sorted(scores), key=lambda name: scores[name])


@dataclass(frozen=True)
class TaskRulePolicy:
    """``rules[category]`` for the query's top category, else ``default``; when that arm is
    not eligible, ``default``; when neither is, uniform."""

    name: str
    rules: Mapping[str, str]
    default: str | None = None
    namespace: str = "Q"
    prefix: str = "cat_"

    def arm_for(self, context: Context) -> str | None:
        category = top_category(context, self.namespace, self.prefix)
        if category is not None and category in self.rules:
            return self.rules[category]
        return self.default

    def probabilities(self, log: BanditLog, progress: Progress = SILENT) -> FloatArray:
        pmf = np.zeros((len(log), len(log.arms)))
        for i, decision in enumerate(log.decisions):
            eligible = decision.context.arm_names
            for arm in (self.arm_for(decision.context), self.default):
                if arm is not None and arm in eligible:
                    pmf[i, log.columns[i][eligible.index(arm)]] = 1.0
                    break
            else:
                pmf[i, log.columns[i]] = 1.0 / len(eligible)
        return pmf


@dataclass(frozen=True)
class FrozenVWPolicy:
    """A trained VW policy's PMF on each logged context; it does not learn from the log.

    Contexts that are the same object are asked once (replays of one prompt share theirs).
    """

    name: str
    policy: VWPolicy = field(compare=False)

    def probabilities(self, log: BanditLog, progress: Progress = SILENT) -> FloatArray:
        pmf = np.zeros((len(log), len(log.arms)))
        lines = log.formatted(progress)
        cache: dict[int, list[float]] = {}
        progress.start(f"{self.name}: predict", len(log))
        try:
            for i, decision in enumerate(log.decisions):
                key = id(decision.context)
                if key not in cache:
                    cache[key] = self.policy.pmf_formatted(lines[i])
                pmf[i, log.columns[i]] = cache[key]
                progress.advance()
        finally:
            progress.finish()
        return pmf


@dataclass(frozen=True)
class ProgressiveVWPolicy:
    """A fresh VW policy with ``config`` that, round by round, gives its PMF and then learns
    the logged arm, probability and reward (re-shaped with ``weights`` when given).

    ``warm_start`` rounds are learned first without being scored (e.g. a training window).
    """

    name: str
    config: PolicyConfig
    weights: RewardWeights | None = None
    warm_start: Sequence[LoggedDecision] = ()

    def probabilities(self, log: BanditLog, progress: Progress = SILENT) -> FloatArray:
        pmf = np.zeros((len(log), len(log.arms)))
        lines = log.formatted(progress)
        policy = VWPolicy(self.name, self.config)
        try:
            progress.start(f"{self.name}: learn", len(self.warm_start) + len(log))
            for decision in self.warm_start:
                policy.learn(
                    decision.context,
                    decision.chosen_arm,
                    decision.probability,
                    training_reward(decision, self.weights),
                )
                progress.advance()
            for i, decision in enumerate(log.decisions):
                pmf[i, log.columns[i]] = policy.pmf_formatted(lines[i])
                policy.learn_formatted(
                    lines[i],
                    decision.context.index(decision.chosen_arm),
                    decision.probability,
                    training_reward(decision, self.weights),
                )
                progress.advance()
        finally:
            progress.finish()
            policy.close()
        return pmf


@dataclass(frozen=True)
class SupportRestricted:
    """``inner`` restricted to each round's explored arms (logging probability > 0) and
    renormalised; a round where ``inner`` uses no explored arm follows the logging policy."""

    name: str
    inner: Candidate

    def probabilities(self, log: BanditLog, progress: Progress = SILENT) -> FloatArray:
        pmf = np.where(log.logging_pmf > 0.0, self.inner.probabilities(log, progress), 0.0)
        totals = pmf.sum(axis=1, keepdims=True)
        logging = LoggingPolicy().probabilities(log)
        restricted: FloatArray = np.where(
            totals > 0, pmf / np.where(totals > 0, totals, 1.0), logging
        )
        return restricted
