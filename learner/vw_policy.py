"""A contextual-bandit policy backed by one Vowpal Wabbit ``--cb_explore_adf`` workspace.

The workspace is not thread-safe and holds the GIL, so every call takes the policy's lock.
VW minimises cost; ``vw_cost`` is the one place where a reward becomes a cost.

A prediction and an update go through VW's native parse/predict (or learn)/finish calls
(``Workspace._parse``, ``pylibvw``), not pyvw's wrapper: private names, so the dependency is
capped below the next minor release, and tests check the PMF against ``Workspace.predict``
and the learned model against ``Workspace.learn``.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pylibvw
import vowpalwabbit

from learner.config import PolicyConfig
from learner.context import Context
from learner.sampling import normalize
from learner.vw_format import NamespaceMemo, adf_lines, with_label

MEMO_SIZE = 4096
"""Namespace texts a policy remembers (``pmf``) before it starts over."""


@contextmanager
def _parsed(workspace: Any, lines: Sequence[str]) -> Iterator[Any]:
    """One multi-line example parsed by VW's native call, finished when the block ends:
    without the Python ``Example`` pyvw's ``predict`` and ``learn`` wrap every line in (and
    the prediction type they look up on each call), which cost more than VW's own parsing
    and prediction. The caller holds the lock."""
    examples = workspace._parse("\n".join(lines).replace("\r", "").strip())
    try:
        yield examples
    finally:
        pylibvw.vw._finish_example_multi_ex(workspace, examples)


def _predict(workspace: Any, lines: Sequence[str]) -> list[float]:
    """The action probabilities of one multi-line example, as ``Workspace.predict(lines)``
    gives them."""
    with _parsed(workspace, lines) as examples:
        pylibvw.vw.predict_multi(workspace, examples)
        return list(examples[0].get_action_scores())


def _learn(workspace: Any, lines: Sequence[str]) -> None:
    """``Workspace.learn(lines)`` for one labelled multi-line example."""
    with _parsed(workspace, lines) as examples:
        pylibvw.vw.learn_multi(workspace, examples)


def vw_cost(reward: float) -> float:
    """VW's cost for a reward in [0, 1]: its negation."""
    return -reward


@dataclass(frozen=True)
class PolicyState:
    """A serialised policy: VW model bytes plus the update count it had."""

    name: str
    config: PolicyConfig
    model: bytes
    updates: int


@dataclass(frozen=True)
class ArmScores:
    """What a policy makes of one context: each arm's probability and estimated reward, in
    the context's arm order."""

    arms: tuple[str, ...]
    pmf: tuple[float, ...]
    rewards: tuple[float, ...]


class VWPolicy:
    """Choose (a PMF over the context's arms) and learn (from a logged decision and reward)."""

    def __init__(
        self, name: str, config: PolicyConfig, *, model: bytes | None = None, updates: int = 0
    ) -> None:
        self.name = name
        self.config = config
        self._lock = threading.Lock()
        self._updates = updates
        self._workspace = self._open(model)
        self._memo: NamespaceMemo = {}

    def _open(self, model: bytes | None) -> Any:
        if model is None:
            return vowpalwabbit.Workspace(self.config.vw_args())
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "policy.vw")
            with open(path, "wb") as handle:
                handle.write(model)
            return vowpalwabbit.Workspace(f"--quiet -i {path}")

    @property
    def updates(self) -> int:
        """How many rewards this policy has learned from (its version)."""
        return self._updates

    def pmf(self, context: Context) -> list[float]:
        """Probability of each of the context's arms, in order; sums to 1.

        The text of a namespace seen before (an arm's identity, its health, the outcomes of
        an arm no neighbour used: most of an example's lines) is remembered, not formatted
        again; the memo starts over past ``MEMO_SIZE`` texts."""
        return self.pmf_formatted(self._lines(context))

    def pmf_formatted(self, lines: Sequence[str]) -> list[float]:
        """``pmf`` of a context already formatted by ``adf_lines`` (without a label)."""
        with self._lock:
            raw = _predict(self._workspace, lines)
        return normalize(raw)

    def scores(self, context: Context) -> ArmScores:
        """The PMF over the context's arms and each arm's estimated reward, from one
        prediction (no learning).

        The estimate is the score VW's reward model gives the arm's line (its predicted cost,
        negated), clipped to [0, 1]: with the default ``mtr`` it is a regression of the
        rewards observed for that arm in similar contexts; an arm the policy never saw
        chosen gets what its features extrapolate to.
        """
        lines = adf_lines(context)
        with self._lock:
            examples = self._workspace.parse(lines)
            try:
                raw = self._workspace.predict(examples)
                costs = [float(e.get_partial_prediction()) for e in examples[1:]]
            finally:
                self._workspace.finish_example(examples)
        rewards = [min(1.0, max(0.0, -vw_cost_estimate)) for vw_cost_estimate in costs]
        return ArmScores(arms=context.arm_names, pmf=tuple(normalize(raw)), rewards=tuple(rewards))

    def learn(self, context: Context, arm: str, probability: float, reward: float) -> int:
        """Learn from ``arm`` having been chosen with ``probability`` and earned ``reward``.

        Returns the new update count. Namespace texts seen before are remembered, as in
        ``pmf``.
        """
        return self.learn_formatted(self._lines(context), context.index(arm), probability, reward)

    def _lines(self, context: Context) -> list[str]:
        """``adf_lines(context)``, namespace texts seen before taken from the memo (which
        starts over past ``MEMO_SIZE`` texts)."""
        if len(self._memo) > MEMO_SIZE:
            self._memo = {}
        return adf_lines(context, memo=self._memo)

    def learn_formatted(
        self, lines: Sequence[str], index: int, probability: float, reward: float
    ) -> int:
        """``learn`` for a context already formatted by ``adf_lines`` (without a label), the
        chosen arm given by its ``index``: lets a replay format each logged context once."""
        if not 0.0 < probability <= 1.0:
            raise ValueError(f"probability must be in (0, 1], got {probability}")
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"reward must be in [0, 1], got {reward}")
        if not 0 <= index < len(lines) - 1:
            raise ValueError(f"arm index {index} is outside the formatted context")
        lines = with_label(lines, (index, vw_cost(reward), probability))
        with self._lock:
            _learn(self._workspace, lines)
            self._updates += 1
            return self._updates

    def advance_to(self, updates: int) -> None:
        """Move the update count forward to ``updates`` (never back): after learning logged
        rewards again, new rewards get numbers above every logged one."""
        with self._lock:
            self._updates = max(self._updates, updates)

    def state(self) -> PolicyState:
        """Serialise the current model (consistent: taken under the lock)."""
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "policy.vw")
            with self._lock:
                self._workspace.save(path)
                updates = self._updates
            with open(path, "rb") as handle:
                model = handle.read()
        return PolicyState(name=self.name, config=self.config, model=model, updates=updates)

    @classmethod
    def restore(cls, state: PolicyState) -> VWPolicy:
        return cls(state.name, state.config, model=state.model, updates=state.updates)

    def close(self) -> None:
        with self._lock:
            self._workspace.finish()
