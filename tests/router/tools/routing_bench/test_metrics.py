import numpy as np
import pytest

from router.tools.routing_bench.metrics import (
    aiq,
    area_under,
    cumulative_regret,
    nondecreasing_hull,
    pct,
    rolling_mean,
)


def test_hull_drops_points_under_the_upper_envelope_and_after_the_best() -> None:
    points = [(1.0, 0.5), (2.0, 0.55), (3.0, 0.9), (4.0, 0.7), (2.0, 0.6), (5.0, 0.9)]
    # (2, 0.6) lies under the chord from (1, 0.5) to (3, 0.9); (4, 0.7) and (5, 0.9) pay more
    # for no more quality than (3, 0.9).
    assert nondecreasing_hull(points) == [(1.0, 0.5), (3.0, 0.9)]


def test_hull_keeps_a_concave_bend_and_starts_at_the_cheapest_point() -> None:
    points = [(0.0, 0.2), (1.0, 0.8), (4.0, 1.0)]
    assert nondecreasing_hull(points) == points
    assert nondecreasing_hull([(2.0, 0.9), (1.0, 0.1)]) == [(1.0, 0.1), (2.0, 0.9)]
    assert nondecreasing_hull([]) == []


def test_area_is_flat_after_the_last_point_and_zero_before_the_first() -> None:
    assert area_under([(2.0, 0.5)], 4.0) == pytest.approx(1.0)
    assert area_under([(0.0, 0.0), (2.0, 1.0)], 2.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="c_max"):
        area_under([(5.0, 1.0)], 4.0)


def test_aiq_of_known_curves_over_a_common_cost_range() -> None:
    values = aiq(
        {
            "cheap-good": [(1.0, 0.8)],
            "expensive": [(4.0, 0.9)],
            "router": [(0.0, 0.5), (2.0, 0.9)],
        }
    )
    # c_max = 4: a single point (c, q) scores q * (4 - c) / 4.
    assert values["cheap-good"] == pytest.approx(0.8 * 3 / 4)
    assert values["expensive"] == pytest.approx(0.0)
    # Triangle-plus-rectangle: (0.5 + 0.9) / 2 * 2 + 0.9 * 2, over 4.
    assert values["router"] == pytest.approx((1.4 + 1.8) / 4)
    assert max(values, key=values.__getitem__) == "router"


def test_regret_accumulates_the_utility_gap_to_the_oracle() -> None:
    quality = np.array([1.0, 0.0, 1.0])
    cost = np.array([0.2, 0.1, 0.1])
    oracle_quality = np.array([1.0, 1.0, 1.0])
    oracle_cost = np.array([0.1, 0.1, 0.1])
    curve = cumulative_regret(
        quality, cost, oracle_quality, oracle_cost, lambda_cost=0.5, cost_ref_usd=0.1
    )
    # cost terms cost / (cost + ref): 2/3 at 0.2, 1/2 at 0.1
    first = 0.5 * (2 / 3 - 1 / 2)
    np.testing.assert_allclose(curve, [first, first + 1.0, first + 1.0])
    with pytest.raises(ValueError, match="one value per request"):
        cumulative_regret(
            quality, cost[:2], oracle_quality, oracle_cost, lambda_cost=0, cost_ref_usd=1
        )


def test_rolling_mean_and_percentages() -> None:
    np.testing.assert_allclose(rolling_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])
    assert pct(0.44, 0.88) == pytest.approx(50.0)
    assert np.isnan(pct(1.0, 0.0))
