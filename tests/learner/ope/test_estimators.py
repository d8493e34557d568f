"""IPS, SNIPS, DM and DR on a synthetic bandit with known values."""

from __future__ import annotations

import numpy as np
import pytest

from learner.ope import estimators as est
from tests.learner.ope.synthetic import (
    LOGGING,
    UNIFORM,
    mean_reward_matrix,
    policy_matrix,
    simulate,
    true_value,
)

GREEDY = {"a": {"good": 1.0}, "b": {"fast": 1.0}}
MIXED = {"a": {"good": 0.7, "cheap": 0.3}, "b": {"fast": 0.5, "good": 0.5}}


@pytest.mark.parametrize("policy", [GREEDY, MIXED, LOGGING], ids=["greedy", "mixed", "logging"])
def test_ips_is_unbiased(policy: dict[str, dict[str, float]]) -> None:
    """The mean of many small-sample IPS estimates is the true value."""
    rng = np.random.default_rng(7)
    estimates = []
    for _ in range(300):
        log = simulate(60, rng)
        estimates.append(est.ips(log, policy_matrix(log, policy)))
    standard_error = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - true_value(policy)) < 3 * standard_error + 1e-3


def test_estimators_converge_to_the_true_value() -> None:
    rng = np.random.default_rng(1)
    log = simulate(20_000, rng)
    target = policy_matrix(log, GREEDY)
    truth = true_value(GREEDY)
    perfect = mean_reward_matrix(log)
    assert est.ips(log, target) == pytest.approx(truth, abs=0.03)
    assert est.snips(log, target) == pytest.approx(truth, abs=0.02)
    assert est.dm(log, target, perfect) == pytest.approx(truth, abs=0.01)
    assert est.dr(log, target, perfect) == pytest.approx(truth, abs=0.02)


def test_ips_equals_snips_and_the_mean_reward_on_policy() -> None:
    """When the candidate is the logging policy every weight is 1."""
    log = simulate(500, np.random.default_rng(2))
    target = policy_matrix(log, LOGGING)
    assert est.importance_weights(log, target) == pytest.approx(np.ones(len(log)))
    assert est.ips(log, target) == pytest.approx(float(log.reward.mean()))
    assert est.snips(log, target) == pytest.approx(est.ips(log, target))


def test_snips_approaches_ips_under_uniform_logging() -> None:
    """Under uniform logging the weights average 1, so the two agree on a large log."""
    log = simulate(20_000, np.random.default_rng(3), UNIFORM)
    target = policy_matrix(log, GREEDY)
    weights = est.importance_weights(log, target)
    assert weights.mean() == pytest.approx(1.0, abs=0.03)
    assert est.snips(log, target) == pytest.approx(est.ips(log, target), rel=0.03)


def test_dr_with_a_perfect_reward_model_is_exact_without_noise() -> None:
    """Rewards equal to their means and a perfect model: DR (and DM) have no error left."""
    log = simulate(400, np.random.default_rng(4), noise=False)
    target = policy_matrix(log, MIXED)
    perfect = mean_reward_matrix(log)
    exact = float((target * perfect).sum(axis=1).mean())
    assert est.dr(log, target, perfect) == pytest.approx(exact, abs=1e-12)
    assert est.dm(log, target, perfect) == pytest.approx(exact, abs=1e-12)


def test_dr_with_a_perfect_model_beats_ips_on_variance() -> None:
    rng = np.random.default_rng(5)
    ips_values, dr_values = [], []
    for _ in range(100):
        log = simulate(100, rng)
        target = policy_matrix(log, GREEDY)
        ips_values.append(est.ips(log, target))
        dr_values.append(est.dr(log, target, mean_reward_matrix(log)))
    assert np.mean(dr_values) == pytest.approx(true_value(GREEDY), abs=0.02)
    assert np.std(dr_values) < 0.7 * np.std(ips_values)


def test_dr_corrects_a_wrong_reward_model() -> None:
    log = simulate(20_000, np.random.default_rng(6))
    target = policy_matrix(log, GREEDY)
    wrong = np.full((len(log), len(log.arms)), 0.5)
    truth = true_value(GREEDY)
    assert abs(est.dm(log, target, wrong) - truth) > 0.3
    assert est.dr(log, target, wrong) == pytest.approx(truth, abs=0.03)


def test_effective_sample_size() -> None:
    assert est.effective_sample_size(np.ones(50)) == pytest.approx(50)
    assert est.effective_sample_size(np.array([0.0, 0.0, 3.0])) == pytest.approx(1.0)
    assert est.effective_sample_size(np.zeros(4)) == 0.0
    assert est.effective_sample_size(np.array([1.0, 3.0])) == pytest.approx(16 / 10)


def test_snips_is_nan_when_the_candidate_never_agrees() -> None:
    sums = np.array([0.0, 0.0, 0.4, 0.4])
    assert np.isnan(est.from_sums(sums, 10, "snips"))
    assert est.from_sums(sums, 10, "ips") == 0.0
