"""Evaluate candidates on a log: every estimator, its bootstrap interval, the effective
sample size and the support diagnostics, in one frozen ``Evaluation``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from learner.ope import estimators as est
from learner.ope.bootstrap import percentile_interval, replicate_sums
from learner.ope.candidates import Candidate, check_probabilities
from learner.ope.log import BanditLog, FloatArray
from learner.ope.progress import SILENT, Progress
from learner.ope.reward_model import RewardModelConfig, fit_reward_model
from learner.ope.support import DEFAULT_MIN_PROPENSITY, SupportReport, check_support


@dataclass(frozen=True)
class EvaluationConfig:
    """Which estimators, how many bootstrap ``resamples`` for a ``level`` interval, the
    support threshold and the reward model (used by DM and DR)."""

    estimators: tuple[est.Estimator, ...] = est.ESTIMATORS
    resamples: int = 500
    level: float = 0.95
    min_propensity: float = DEFAULT_MIN_PROPENSITY
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)

    def __post_init__(self) -> None:
        unknown = set(self.estimators) - set(est.ESTIMATORS)
        if unknown or not self.estimators:
            raise ValueError(f"estimators must be among {', '.join(est.ESTIMATORS)}")
        if self.resamples < 0:
            raise ValueError("resamples must be >= 0 (0: no intervals)")
        if not 0.0 < self.level < 1.0:
            raise ValueError("level must be in (0, 1)")
        if not 0.0 < self.min_propensity < 1.0:
            raise ValueError("min_propensity must be in (0, 1)")

    @property
    def needs_reward_model(self) -> bool:
        return "dm" in self.estimators or "dr" in self.estimators


@dataclass(frozen=True)
class Interval:
    """An estimate and its bootstrap interval (NaN bounds without resamples)."""

    estimator: est.Estimator
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class CandidateReport:
    """One candidate: its estimates, how much of the log its weights use, and its support.

    ``arm_share`` is the fraction of rounds the candidate would give each arm.
    """

    name: str
    estimates: tuple[Interval, ...]
    effective_sample_size: float
    max_weight: float
    arm_share: Mapping[str, float]
    support: SupportReport

    def value(self, estimator: est.Estimator) -> Interval:
        for interval in self.estimates:
            if interval.estimator == estimator:
                return interval
        raise KeyError(estimator)


@dataclass(frozen=True)
class Evaluation:
    """Every candidate on the same ``n`` logged rounds."""

    n: int
    arms: tuple[str, ...]
    logged_reward: float
    logged_share: Mapping[str, float]
    candidates: tuple[CandidateReport, ...]
    config: EvaluationConfig


def score(
    log: BanditLog,
    targets: Mapping[str, FloatArray],
    reward_hat: FloatArray | None,
    config: EvaluationConfig,
    rng: np.random.Generator,
) -> Evaluation:
    """Estimate each named (n, K) candidate matrix; ``reward_hat`` feeds DM and DR."""
    if len(log) == 0:
        raise ValueError("no logged decisions to evaluate")
    if config.needs_reward_model and reward_hat is None:
        raise ValueError("DM and DR need a reward model")
    names = list(targets)
    for name in names:
        check_probabilities(log, name, targets[name])
    tables = [est.terms(log, targets[name], reward_hat) for name in names]
    replicates: FloatArray | None = None
    if config.resamples > 0:
        joined = np.concatenate(tables, axis=1)
        replicates = replicate_sums(joined, config.resamples, rng)
    n = len(log)
    reports: list[CandidateReport] = []
    for c, name in enumerate(names):
        table = tables[c]
        sums = table.sum(axis=0)
        intervals: list[Interval] = []
        for estimator in config.estimators:
            value = float(est.from_sums(sums, n, estimator))
            low = high = float("nan")
            if replicates is not None:
                block = replicates[:, c * est.TERM_COUNT : (c + 1) * est.TERM_COUNT]
                low, high = percentile_interval(est.from_sums(block, n, estimator), config.level)
            intervals.append(Interval(estimator, value, low, high))
        weights = table[:, 1]
        share = targets[name].mean(axis=0)
        reports.append(
            CandidateReport(
                name=name,
                estimates=tuple(intervals),
                effective_sample_size=est.effective_sample_size(weights),
                max_weight=float(weights.max()),
                arm_share={arm: float(share[k]) for k, arm in enumerate(log.arms)},
                support=check_support(log, targets[name], config.min_propensity),
            )
        )
    drawn = np.bincount(log.chosen, minlength=len(log.arms)) / n
    return Evaluation(
        n=n,
        arms=log.arms,
        logged_reward=float(log.reward.mean()),
        logged_share={arm: float(drawn[k]) for k, arm in enumerate(log.arms)},
        candidates=tuple(reports),
        config=config,
    )


def evaluate(
    log: BanditLog,
    candidates: Sequence[Candidate],
    config: EvaluationConfig,
    rng: np.random.Generator,
    progress: Progress = SILENT,
) -> Evaluation:
    """Ask every candidate for its probabilities, fit the reward model, estimate."""
    names = [candidate.name for candidate in candidates]
    if len(set(names)) != len(names):
        raise ValueError("candidate names must be unique")
    targets = {c.name: c.probabilities(log, progress) for c in candidates}
    reward_hat = (
        fit_reward_model(log, config.reward_model, rng, progress)
        if config.needs_reward_model
        else None
    )
    return score(log, targets, reward_hat, config, rng)
