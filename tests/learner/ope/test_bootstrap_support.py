"""Bootstrap intervals and support diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from learner.ope.bootstrap import percentile_interval, replicate_sums
from learner.ope.support import check_support
from tests.learner.ope.synthetic import policy_matrix, simulate

NO_CHEAP = {"a": {"good": 0.5, "fast": 0.5, "cheap": 0.0}, "b": {"good": 0.5, "fast": 0.5}}


def test_replicates_are_seeded_and_centred() -> None:
    values = np.random.default_rng(0).normal(2.0, 1.0, size=(1_000, 1))
    first = replicate_sums(values, 400, np.random.default_rng(9))
    again = replicate_sums(values, 400, np.random.default_rng(9))
    assert np.array_equal(first, again)
    means = first[:, 0] / len(values)
    low, high = percentile_interval(means, 0.95)
    assert low < values.mean() < high
    # the spread of bootstrap means is the standard error of the mean
    assert np.std(means) == pytest.approx(values.std() / np.sqrt(len(values)), rel=0.2)


def test_nan_columns_stay_nan() -> None:
    table = np.ones((10, 2))
    table[:, 1] = np.nan
    sums = replicate_sums(table, 5, np.random.default_rng(0))
    assert np.all(sums[:, 0] == 10)
    assert np.all(np.isnan(sums[:, 1]))
    assert all(np.isnan(v) for v in percentile_interval(sums[:, 1], 0.9))


def test_a_candidate_on_an_unexplored_arm_is_flagged() -> None:
    log = simulate(300, np.random.default_rng(1), {"a": NO_CHEAP["a"], "b": NO_CHEAP["a"]})
    always_cheap = policy_matrix(log, {"a": {"cheap": 1.0}, "b": {"cheap": 1.0}})
    report = check_support(log, always_cheap)
    assert not report.supported
    assert report.unsupported_mass == pytest.approx(1.0)
    assert report.unexplored_arms == ("cheap",)
    assert any("never explored" in w for w in report.warnings())


def test_a_supported_candidate_is_not_flagged() -> None:
    log = simulate(300, np.random.default_rng(2))
    report = check_support(log, policy_matrix(log, {"a": {"good": 1.0}, "b": {"fast": 1.0}}))
    assert report.supported
    assert report.warnings() == ()


def test_barely_explored_arms_are_reported() -> None:
    thin = {kind: {"good": 0.995, "fast": 0.004, "cheap": 0.001} for kind in ("a", "b")}
    log = simulate(200, np.random.default_rng(3), thin)
    report = check_support(log, policy_matrix(log, {"a": {"fast": 1.0}, "b": {"good": 1.0}}))
    assert report.low_propensity_mass == pytest.approx(0.5, abs=0.1)
    assert any("probability < 0.01" in w for w in report.warnings())
