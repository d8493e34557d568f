"""Per-arm estimates: a real VW policy's own prediction on logged contexts, beside the
observed rewards."""

from __future__ import annotations

import numpy as np
import pytest

from learner.config import PolicyConfig
from learner.context import ArmFeatures, Context
from learner.estimates import LoggedOutcome, arm_estimates
from learner.sampling import sample_index
from learner.vw_policy import VWPolicy

ARMS = ("coder", "generalist", "cheap")
REWARD = {"coder": 0.9, "generalist": 0.5, "cheap": 0.1}


def context(arms: tuple[str, ...] = ARMS) -> Context:
    return Context(
        shared={"Q": {"log_tokens": 2.0}},
        arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in arms),
    )


def run(policy: VWPolicy, rounds: int, seed: int) -> list[LoggedOutcome]:
    """Route ``rounds`` decisions with the policy and learn each one's reward."""
    rng = np.random.default_rng(seed)
    logged = []
    for _ in range(rounds):
        ctx = context()
        pmf = policy.pmf(ctx)
        index = sample_index(pmf, rng)
        arm = ctx.arm_names[index]
        policy.learn(ctx, arm, pmf[index], REWARD[arm])
        logged.append(LoggedOutcome(ctx, arm, REWARD[arm]))
    return logged


def test_scores_match_the_pmf_and_predict_each_arms_reward() -> None:
    policy = VWPolicy("pre", PolicyConfig(exploration="epsilon", epsilon=0.3, seed=1))
    run(policy, 600, seed=1)
    scores = policy.scores(context())
    assert scores.arms == ARMS
    assert list(scores.pmf) == pytest.approx(policy.pmf(context()))
    for arm, estimate in zip(scores.arms, scores.rewards, strict=True):
        assert estimate == pytest.approx(REWARD[arm], abs=0.1)
    assert policy.updates == 600  # scoring learns nothing


def test_estimates_rank_the_arm_feedback_favours_first() -> None:
    policy = VWPolicy("pre", PolicyConfig(exploration="epsilon", epsilon=0.3, seed=2))
    cold = arm_estimates(policy, [LoggedOutcome(context(), "cheap", None)])
    assert {e.arm: e.estimated_reward for e in cold} == {
        "coder": 0.0,
        "generalist": 0.0,
        "cheap": 0.0,
    }

    logged = run(policy, 400, seed=2)
    estimates = {e.arm: e for e in arm_estimates(policy, logged[-100:])}
    coder, generalist, cheap = (estimates[a] for a in ARMS)
    assert coder.estimated_reward is not None
    assert generalist.estimated_reward is not None
    assert cheap.estimated_reward is not None
    assert coder.estimated_reward > generalist.estimated_reward > cheap.estimated_reward
    assert coder.probability > generalist.probability
    assert coder.share > 0.5
    assert sum(e.share for e in estimates.values()) == pytest.approx(1.0)
    assert sum(e.probability for e in estimates.values()) == pytest.approx(1.0)
    assert coder.observed_reward == pytest.approx(0.9)
    assert coder.decisions == coder.rewarded
    assert coder.eligible == 100


def test_arms_never_eligible_or_never_rewarded_have_no_numbers() -> None:
    policy = VWPolicy("pre", PolicyConfig(seed=3))
    logged = [
        LoggedOutcome(context(("coder", "cheap")), "coder", None),
        LoggedOutcome(context(("coder", "cheap")), "cheap", 0.4),
    ]
    estimates = arm_estimates(policy, logged, arms=("generalist", "coder"))
    assert [e.arm for e in estimates] == ["generalist", "coder", "cheap"]
    generalist, coder, cheap = estimates
    assert generalist.eligible == 0
    assert generalist.estimated_reward is None
    assert generalist.probability == 0.0
    assert coder.share == 0.5
    assert coder.observed_reward is None
    assert coder.rewarded == 0
    assert cheap.observed_reward == pytest.approx(0.4)
    assert arm_estimates(policy, []) == []
