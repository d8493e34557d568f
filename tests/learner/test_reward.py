import itertools

import numpy as np
import pytest

from learner.reward import (
    RewardWeights,
    marginal_usd_per_quality,
    saturating,
    shape_reward,
    utility,
)


def test_reward_shaping() -> None:
    weights = RewardWeights(lambda_cost=0.5, lambda_latency=0.1, cost_ref_usd=0.01)
    # utility in (-0.6, 1], mapped onto [0, 1] by (utility + 0.6) / 1.6
    assert shape_reward(1.0, 0.0, 0.0, weights) == 1.0
    # at the reference the cost term is one half
    assert shape_reward(1.0, 0.01, 0.0, weights) == pytest.approx((0.75 + 0.6) / 1.6)
    assert utility(0.0, 0.005, 0.0, weights) == pytest.approx(-0.5 / 3)
    assert shape_reward(0.0, 1e12, 1e15, weights) == pytest.approx(0.0, abs=1e-9)
    assert 0.0 <= shape_reward(0.0, 1e12, 1e15, weights) <= 1.0
    with pytest.raises(ValueError, match="quality"):
        shape_reward(1.5, 0.0, 0.0, weights)


def test_the_cost_term_never_goes_flat() -> None:
    """A term capped at the reference made every request dearer than it equally expensive;
    a $0.50 request must look worse than a $0.02 one, and either worse than $0.01."""
    weights = RewardWeights(lambda_cost=0.3, lambda_latency=0.0, cost_ref_usd=0.01)
    costs = [0.0, 0.001, 0.01, 0.02, 0.05, 0.5, 5.0]
    rewards = [shape_reward(1.0, c, 0.0, weights) for c in costs]
    assert all(a > b for a, b in itertools.pairwise(rewards))
    assert rewards[3] - rewards[5] > 0.05  # $0.02 against $0.50: a visible gap, not rounding
    assert saturating(-1.0, 1.0) == 0.0
    assert saturating(1.0, 1.0) == 0.5


def test_lambda_cost_in_dollars() -> None:
    """Near zero a unit of quality is worth cost_ref / lambda dollars, more as cost grows."""
    weights = RewardWeights(lambda_cost=0.5, lambda_latency=0.0, cost_ref_usd=0.01)
    assert marginal_usd_per_quality(0.0, weights) == pytest.approx(0.02)
    assert marginal_usd_per_quality(0.01, weights) == pytest.approx(0.08)
    # the slope is what it says: a small step in cost changes the utility by step / price
    step = 1e-7
    drop = utility(1.0, 0.01, 0.0, weights) - utility(1.0, 0.01 + step, 0.0, weights)
    assert drop == pytest.approx(step / 0.08, rel=1e-4)
    free = RewardWeights(lambda_cost=0.0)
    assert marginal_usd_per_quality(0.01, free) == float("inf")


def test_wrong_answers_are_worth_less_the_more_they_cost() -> None:
    """Clipping at 0 made every wrong answer worth 0, so a costly arm's failures were free."""
    weights = RewardWeights(lambda_cost=0.5, lambda_latency=0.0, cost_ref_usd=0.01)
    cheap, costly, dearer = (shape_reward(0.0, c, 0.0, weights) for c in (0.0005, 0.01, 0.2))
    assert 0.0 <= dearer < costly < cheap < 1.0


def test_reward_keeps_every_comparison_of_expected_utility() -> None:
    rng = np.random.default_rng(1)
    weights = RewardWeights(lambda_cost=0.8, lambda_latency=0.2, cost_ref_usd=0.01)
    for _ in range(200):
        a, b = (
            [(float(rng.random()), float(rng.random()) * 0.5, 0.0) for _ in range(5)]
            for _ in range(2)
        )
        by_utility = np.mean([utility(*o, weights) for o in a]) > np.mean(
            [utility(*o, weights) for o in b]
        )
        by_reward = np.mean([shape_reward(*o, weights) for o in a]) > np.mean(
            [shape_reward(*o, weights) for o in b]
        )
        assert by_utility == by_reward


def test_weights_are_validated() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        RewardWeights(lambda_cost=-0.1)
    with pytest.raises(ValueError, match="positive"):
        RewardWeights(cost_ref_usd=0.0)
