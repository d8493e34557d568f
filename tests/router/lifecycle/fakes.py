"""A policy registry for the decider's tests: each stage's policy has a fixed PMF, and the
registry remembers every reward it was taught."""

from __future__ import annotations

from collections.abc import Sequence

from learner.anchor import Evidence
from learner.context import Context
from router.policies import Learned, Served


class FixedPolicy:
    updates = 0

    def __init__(self, pmf: Sequence[float]) -> None:
        self._pmf = list(pmf)

    def pmf(self, context: Context) -> list[float]:
        return list(self._pmf)


class FixedPolicies:
    """Every stage served by a policy of PMF ``pmf``; ``learned`` holds ``(stage, arm,
    probability, reward)`` of every reward taught, in order."""

    def __init__(self, pmf: Sequence[float] = (0.9, 0.1)) -> None:
        self._policy = FixedPolicy(pmf)
        self._evidence: dict[str, Evidence] = {}
        self.learned: list[tuple[str, str, float, float]] = []

    def serving(self, stage: str, tenant: str | None = None) -> Served:
        return Served(self._policy, stage, True)  # type: ignore[arg-type]

    def evidence(self, stage: str, tenant: str | None = None) -> Evidence:
        return self._evidence.setdefault(stage, Evidence())

    async def learn_for(
        self,
        tenant: str | None,
        stage: str,
        context: Context,
        arm: str,
        probability: float,
        reward: float,
        *,
        logged: bool = True,
    ) -> Learned:
        self.learned.append((stage, arm, probability, reward))
        return Learned(stage, len(self.learned))
