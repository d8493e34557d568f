"""Logged decisions, one by one and as the columns the estimators work on.

A logged decision is one bandit round: the context (with its eligible arms), the arm drawn,
the probability it was drawn with (the propensity), the logging policy's whole PMF and the
reward that OPE scores it by. Which reward that is, when a decision has several (the
immediate checks, then user feedback), is the reader's choice, made once: see
``router.tools.offline_eval.loading``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from learner.context import Context
from learner.ope.progress import SILENT, Progress
from learner.vw_format import NamespaceMemo, adf_lines

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

PMF_TOLERANCE = 1e-3
"""How far a logged PMF may sum from 1 (float rounding in logs) before it is rejected."""


@dataclass(frozen=True)
class Outcome:
    """What a reward was shaped from, when the log keeps it: lets a candidate re-weight it."""

    quality: float
    cost_usd: float
    latency_ms: float


@dataclass(frozen=True)
class LoggedDecision:
    """One logged round. ``pmf`` maps the context's arms to their logging probabilities
    (arms it leaves out had probability 0); ``probability`` is the chosen arm's."""

    decision_id: str
    context: Context
    chosen_arm: str
    probability: float
    pmf: Mapping[str, float]
    reward: float
    stage: str = "pre"
    policy_name: str = ""
    policy_version: int = 0
    timestamp: datetime | None = None
    reward_source: str = ""
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        arms = self.context.arm_names
        if self.chosen_arm not in arms:
            raise ValueError(
                f"decision {self.decision_id}: chosen arm {self.chosen_arm!r} "
                "is not among its context's arms"
            )
        if not 0.0 < self.probability <= 1.0:
            raise ValueError(
                f"decision {self.decision_id}: probability must be in (0, 1], "
                f"got {self.probability}"
            )
        if not 0.0 <= self.reward <= 1.0 or not math.isfinite(self.reward):
            raise ValueError(
                f"decision {self.decision_id}: reward must be in [0, 1], got {self.reward}"
            )
        unknown = set(self.pmf) - set(arms)
        if unknown:
            raise ValueError(
                f"decision {self.decision_id}: pmf names arms outside the "
                f"context: {', '.join(sorted(unknown))}"
            )
        if any(p < 0 or not math.isfinite(p) for p in self.pmf.values()):
            raise ValueError(f"decision {self.decision_id}: pmf values must be >= 0")
        total = sum(self.pmf.values())
        if abs(total - 1.0) > PMF_TOLERANCE:
            raise ValueError(f"decision {self.decision_id}: pmf sums to {total:.6g}, not 1")


_A = TypeVar("_A", bound=np.ndarray)


def _frozen(array: _A) -> _A:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class BanditLog:
    """Decisions as aligned columns over a global arm vocabulary ``arms`` (K columns).

    ``logging_pmf[i, k]`` is the logging probability of arm k in round i (0 for arms that
    were not eligible), ``eligible[i, k]`` whether arm k was a candidate, ``chosen[i]`` the
    column drawn, ``propensity[i]`` its logged probability, ``reward[i]`` its reward.
    ``columns[i]`` maps round i's context order to columns.
    """

    decisions: tuple[LoggedDecision, ...]
    arms: tuple[str, ...]
    chosen: IntArray
    propensity: FloatArray
    reward: FloatArray
    logging_pmf: FloatArray
    eligible: BoolArray
    columns: tuple[IntArray, ...] = field(repr=False)
    _formatted: dict[str, tuple[tuple[str, ...], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_decisions(cls, decisions: Sequence[LoggedDecision]) -> BanditLog:
        """Columns of ``decisions`` (kept in the given order); arms in first-seen order."""
        index: dict[str, int] = {}
        for decision in decisions:
            for arm in decision.context.arm_names:
                index.setdefault(arm, len(index))
        n, k = len(decisions), len(index)
        logging_pmf = np.zeros((n, k))
        eligible = np.zeros((n, k), dtype=np.bool_)
        chosen = np.zeros(n, dtype=np.int64)
        propensity = np.zeros(n)
        reward = np.zeros(n)
        columns: list[IntArray] = []
        for i, decision in enumerate(decisions):
            cols = np.fromiter((index[a] for a in decision.context.arm_names), dtype=np.int64)
            columns.append(cols)
            eligible[i, cols] = True
            for arm, p in decision.pmf.items():
                logging_pmf[i, index[arm]] = p
            chosen[i] = index[decision.chosen_arm]
            propensity[i] = decision.probability
            reward[i] = decision.reward
        for array in (logging_pmf, eligible, chosen, propensity, reward):
            array.setflags(write=False)
        return cls(
            decisions=tuple(decisions),
            arms=tuple(index),
            chosen=chosen,
            propensity=propensity,
            reward=reward,
            logging_pmf=logging_pmf,
            eligible=eligible,
            columns=tuple(columns),
        )

    def __len__(self) -> int:
        return len(self.decisions)

    def arm_column(self, arm: str) -> int | None:
        """The column of ``arm``; None when no logged round offered it."""
        try:
            return self.arms.index(arm)
        except ValueError:
            return None

    def scatter(self, row: int, values: Sequence[float]) -> FloatArray:
        """A length-K row holding ``values`` (in round ``row``'s context order), 0 elsewhere."""
        out = np.zeros(len(self.arms))
        out[self.columns[row]] = values
        return out

    def formatted(self, progress: Progress = SILENT) -> tuple[tuple[str, ...], ...]:
        """Each round's context as VW ADF lines without a label (``adf_lines``), computed
        once per log and shared by every VW policy replayed on it; contexts that are one
        object (replays of one prompt) are formatted once."""
        cached = self._formatted.get("lines")
        if cached is not None:
            return cached
        by_context: dict[int, tuple[str, ...]] = {}
        memo: NamespaceMemo = {}
        lines: list[tuple[str, ...]] = []
        progress.start("format contexts", len(self))
        try:
            for decision in self.decisions:
                key = id(decision.context)
                if key not in by_context:
                    by_context[key] = tuple(adf_lines(decision.context, memo=memo))
                lines.append(by_context[key])
                progress.advance()
        finally:
            progress.finish()
        result = tuple(lines)
        self._formatted["lines"] = result
        return result

    def split(self, holdout: float) -> tuple[BanditLog, BanditLog]:
        """The first ``1 - holdout`` of the rounds (in log order) and the rest.

        Both halves keep this log's arm vocabulary, so their columns line up.
        """
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {holdout}")
        cut = round(len(self) * (1.0 - holdout))
        if cut <= 0 or cut >= len(self):
            raise ValueError(f"cannot split {len(self)} decisions with holdout {holdout}")
        return self.rows(slice(0, cut)), self.rows(slice(cut, len(self)))

    def rows(self, selection: slice | IntArray) -> BanditLog:
        """A log of the selected rounds, with this log's arm vocabulary."""
        picked = np.arange(len(self))[selection]
        chosen, propensity, reward = (
            _frozen(self.chosen[picked]),
            _frozen(self.propensity[picked]),
            _frozen(self.reward[picked]),
        )
        logging_pmf, eligible = _frozen(self.logging_pmf[picked]), _frozen(self.eligible[picked])
        return BanditLog(
            decisions=tuple(self.decisions[i] for i in picked),
            arms=self.arms,
            chosen=chosen,
            propensity=propensity,
            reward=reward,
            logging_pmf=logging_pmf,
            eligible=eligible,
            columns=tuple(self.columns[i] for i in picked),
        )
