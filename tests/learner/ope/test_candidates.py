"""Candidate policies, counterfactual training, the reward model and a full evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from learner.config import PolicyConfig
from learner.context import ArmFeatures, Context
from learner.ope.candidates import (
    FrozenVWPolicy,
    LoggingPolicy,
    ProgressiveVWPolicy,
    StaticPolicy,
    TaskRulePolicy,
    check_probabilities,
)
from learner.ope.evaluation import EvaluationConfig, evaluate
from learner.ope.log import BanditLog, LoggedDecision
from learner.ope.reward_model import RewardModelConfig, fit_reward_model
from learner.ope.training import train_policy
from learner.vw_format import adf_lines, with_label
from tests.learner.ope.synthetic import (
    ARMS,
    CONTEXTS,
    UNIFORM,
    mean_reward_matrix,
    simulate,
    true_value,
)

EPSILON_GREEDY = PolicyConfig(exploration="epsilon", epsilon=0.1, cb_type="dr", seed=1)


def _two_arm_log() -> BanditLog:
    """Round 0 offers good and fast; round 1 only fast and cheap."""
    narrow = Context(shared=CONTEXTS["a"].shared, arms=CONTEXTS["a"].arms[1:])
    return BanditLog.from_decisions(
        [
            LoggedDecision("0", CONTEXTS["a"], "good", 0.5, {"good": 0.5, "fast": 0.5}, 1.0),
            LoggedDecision("1", narrow, "fast", 1.0, {"fast": 1.0}, 0.0),
        ]
    )


def test_static_policy_falls_back_to_uniform_over_eligible_arms() -> None:
    log = _two_arm_log()
    pmf = StaticPolicy("always good", ("good",)).probabilities(log)
    good, fast, cheap = (log.arms.index(a) for a in ARMS)
    assert pmf[0, good] == 1.0
    assert pmf[1, good] == 0.0
    assert pmf[1, fast] == pmf[1, cheap] == 0.5
    check_probabilities(log, "always good", pmf)


def test_candidates_may_not_use_ineligible_arms() -> None:
    log = _two_arm_log()
    bad = np.zeros((2, 3))
    bad[:, log.arms.index("good")] = 1.0
    with pytest.raises(ValueError, match="not eligible"):
        check_probabilities(log, "bad", bad)


def test_task_rule_follows_the_top_category() -> None:
    log = simulate(50, np.random.default_rng(0))
    rule = TaskRulePolicy("rule", {"code": "good"}, default="fast")
    pmf = rule.probabilities(log)
    for i, decision in enumerate(log.decisions):
        expected = "good" if decision.context.shared["Q"]["kind"] == "a" else "fast"
        assert pmf[i, log.arms.index(expected)] == 1.0


def test_logging_policy_reproduces_the_logged_pmfs() -> None:
    log = simulate(20, np.random.default_rng(1))
    assert np.allclose(LoggingPolicy().probabilities(log), log.logging_pmf)


def test_with_label_matches_adf_lines() -> None:
    context = CONTEXTS["b"]
    label = (2, -0.25, 0.125)
    assert with_label(adf_lines(context), label) == adf_lines(context, label)


def test_progressive_vw_learns_the_obvious_arm() -> None:
    """Learning online from uniformly logged rounds, the policy ends on each kind's best arm."""
    log = simulate(3_000, np.random.default_rng(2), UNIFORM)
    pmf = ProgressiveVWPolicy("vw", EPSILON_GREEDY).probabilities(log)
    late = slice(2_000, None)
    picked = [log.arms[int(np.argmax(row))] for row in pmf[late]]
    kinds = [d.context.shared["Q"]["kind"] for d in log.decisions[late]]
    right = sum(
        (k == "a" and p == "good") or (k == "b" and p == "fast")
        for k, p in zip(kinds, picked, strict=True)
    )
    assert right / len(picked) > 0.95


def test_counterfactual_training_beats_the_logging_policy_on_held_out_logs() -> None:
    log = simulate(4_000, np.random.default_rng(3))
    train, held_out = log.split(0.25)
    policy = train_policy(train, "trained", EPSILON_GREEDY)
    try:
        evaluation = evaluate(
            held_out,
            [LoggingPolicy(), FrozenVWPolicy("trained", policy)],
            EvaluationConfig(resamples=200),
            np.random.default_rng(4),
        )
    finally:
        policy.close()
    logging, trained = evaluation.candidates
    assert trained.value("dr").low > logging.value("dr").high
    optimum = true_value({"a": {"good": 1.0}, "b": {"fast": 1.0}})
    assert trained.value("dr").value == pytest.approx(optimum, abs=0.08)


def test_the_reward_model_is_cross_fitted_and_close() -> None:
    log = simulate(6_000, np.random.default_rng(5))
    predicted = fit_reward_model(log, RewardModelConfig(), np.random.default_rng(6))
    assert predicted.min() >= 0.0
    assert predicted.max() <= 1.0
    assert np.abs(predicted - mean_reward_matrix(log)).max() < 0.06


def test_evaluation_reports_every_estimator_with_intervals() -> None:
    log = simulate(2_000, np.random.default_rng(7))
    evaluation = evaluate(
        log,
        [LoggingPolicy(), StaticPolicy("always good", ("good",))],
        EvaluationConfig(resamples=100),
        np.random.default_rng(8),
    )
    assert evaluation.n == 2_000
    logging = evaluation.candidates[0]
    assert logging.value("ips").value == pytest.approx(evaluation.logged_reward)
    assert logging.effective_sample_size == pytest.approx(2_000)
    for report in evaluation.candidates:
        for interval in report.estimates:
            assert interval.low <= interval.value <= interval.high
    always_good = evaluation.candidates[1]
    assert always_good.arm_share["good"] == 1.0
    assert always_good.effective_sample_size < 2_000


def test_evaluation_is_deterministic_given_the_seed() -> None:
    log = simulate(500, np.random.default_rng(9))
    candidates = [StaticPolicy("always fast", ("fast",))]
    first = evaluate(log, candidates, EvaluationConfig(resamples=50), np.random.default_rng(1))
    again = evaluate(log, candidates, EvaluationConfig(resamples=50), np.random.default_rng(1))
    assert first == again


def test_split_keeps_the_arm_columns() -> None:
    log = simulate(100, np.random.default_rng(10))
    train, held_out = log.split(0.3)
    assert (len(train), len(held_out)) == (70, 30)
    assert train.arms == held_out.arms == log.arms
    assert held_out.decisions[0] is log.decisions[70]


def test_decisions_are_validated() -> None:
    context = Context(shared={}, arms=(ArmFeatures("x"), ArmFeatures("y")))
    with pytest.raises(ValueError, match="probability"):
        LoggedDecision("d", context, "x", 0.0, {"x": 1.0}, 0.5)
    with pytest.raises(ValueError, match="not among"):
        LoggedDecision("d", context, "z", 0.5, {"x": 1.0}, 0.5)
    with pytest.raises(ValueError, match="sums to"):
        LoggedDecision("d", context, "x", 0.5, {"x": 0.5}, 0.5)
