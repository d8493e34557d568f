"""A small synthetic bandit whose every value is known exactly, for the OPE tests.

Two kinds of query (``kind=a`` / ``kind=b``, equally likely) and three arms. Arm ``good``
is best for ``a``, arm ``fast`` for ``b``; the logging policy depends on the kind.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from learner.context import ArmFeatures, Context
from learner.ope.log import BanditLog, FloatArray, LoggedDecision

ARMS = ("good", "fast", "cheap")
KINDS = ("a", "b")
MEAN_REWARD: Mapping[str, Mapping[str, float]] = {
    "a": {"good": 0.9, "fast": 0.4, "cheap": 0.2},
    "b": {"good": 0.3, "fast": 0.8, "cheap": 0.5},
}
LOGGING: Mapping[str, Mapping[str, float]] = {
    "a": {"good": 0.2, "fast": 0.5, "cheap": 0.3},
    "b": {"good": 0.6, "fast": 0.2, "cheap": 0.2},
}
UNIFORM = {kind: {arm: 1 / 3 for arm in ARMS} for kind in KINDS}

CONTEXTS = {
    kind: Context(
        shared={"Q": {"kind": kind, "cat_code" if kind == "a" else "cat_chat": 0.9}},
        arms=tuple(
            ArmFeatures(arm=arm, namespaces={"A": {"arm": arm, "price": float(i)}})
            for i, arm in enumerate(ARMS)
        ),
    )
    for kind in KINDS
}


def true_value(policy: Mapping[str, Mapping[str, float]]) -> float:
    """The exact value of a policy given as kind -> arm -> probability."""
    return sum(
        0.5 * sum(policy[kind].get(arm, 0.0) * MEAN_REWARD[kind][arm] for arm in ARMS)
        for kind in KINDS
    )


def simulate(
    n: int,
    rng: np.random.Generator,
    logging: Mapping[str, Mapping[str, float]] = LOGGING,
    *,
    noise: bool = True,
) -> BanditLog:
    """``n`` rounds; rewards are Bernoulli(mean) (or the mean itself without ``noise``)."""
    decisions = []
    kinds = rng.integers(0, 2, size=n)
    for i in range(n):
        kind = KINDS[kinds[i]]
        pmf = logging[kind]
        arm = ARMS[rng.choice(3, p=[pmf[a] for a in ARMS])]
        mean = MEAN_REWARD[kind][arm]
        reward = float(rng.random() < mean) if noise else mean
        decisions.append(
            LoggedDecision(
                decision_id=f"d{i}",
                context=CONTEXTS[kind],
                chosen_arm=arm,
                probability=pmf[arm],
                pmf=dict(pmf),
                reward=reward,
            )
        )
    return BanditLog.from_decisions(decisions)


def policy_matrix(log: BanditLog, policy: Mapping[str, Mapping[str, float]]) -> FloatArray:
    """A kind -> arm -> probability policy as the log's (n, K) candidate matrix."""
    out = np.zeros((len(log), len(log.arms)))
    for i, decision in enumerate(log.decisions):
        kind = str(decision.context.shared["Q"]["kind"])
        for arm, p in policy[kind].items():
            out[i, log.arms.index(arm)] = p
    return out


def mean_reward_matrix(log: BanditLog) -> FloatArray:
    """The true expected reward of every (round, arm): a perfect direct model."""
    out = np.zeros((len(log), len(log.arms)))
    for i, decision in enumerate(log.decisions):
        kind = str(decision.context.shared["Q"]["kind"])
        for arm in ARMS:
            out[i, log.arms.index(arm)] = MEAN_REWARD[kind][arm]
    return out
