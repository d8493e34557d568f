import numpy as np
import pytest

from features.errors import ConfigError
from router.tools.routing_bench.learned import check_arm_names
from router.tools.routing_bench.matrix import default_judge, restrict
from router.tools.routing_bench.operating_points import (
    OperatingPoints,
    choose_points,
    escalation_break_even,
    frontier_hull,
    hull_lambdas,
    pre_points,
    value_targets,
)
from router.tools.routing_bench.tables import build_matrix
from tests.router.tools.routing_bench.synthetic import synthetic_matrix, synthetic_rows


def test_the_hull_keeps_only_models_worth_their_price() -> None:
    quality = np.array([0.50, 0.55, 0.70, 0.60, 0.90])
    cost = np.array([0.01, 0.05, 0.06, 0.30, 0.50])
    # 0.55 at 0.05 lies under the line from 0.50 to 0.70; 0.60 at 0.30 is beaten by 0.70
    assert frontier_hull(quality, cost) == [0, 2, 4]


def test_each_hull_point_picks_its_own_vertex() -> None:
    """At a vertex's lambda the objective ranks that vertex first among the single models:
    the points are where the curve's corners are, whatever the prices."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        cost = np.sort(rng.uniform(0.001, 1.0, 6))
        quality = np.sort(rng.uniform(0.2, 0.95, 6))
        hull = frontier_hull(quality, cost)
        for vertex, lam in zip(hull, hull_lambdas(quality, cost, hull), strict=True):
            assert int(np.argmax(quality - lam * cost)) == vertex


def test_pre_points_span_a_strong_weak_pair() -> None:
    """On a pool of one strong and one cheap model both ends get a point (a RouterBench
    grid put every point on the cheap model)."""
    quality, cost = np.array([0.60, 0.85]), np.array([0.02, 0.45])
    points = pre_points(quality, cost)
    assert len(points) == 2
    assert [int(np.argmax(quality - lam * cost)) for lam in points] == [0, 1]


def test_pre_points_span_the_hull_from_the_cheapest_to_the_best_vertex() -> None:
    """The best model's end gets a point too: where no cheaper mix matches the best model,
    the router sending every request to it is on the learned curve."""
    quality = np.array([0.58, 0.74, 0.77, 0.88])
    cost = np.array([0.016, 0.047, 0.061, 0.48])
    points = pre_points(quality, cost)
    assert [int(np.argmax(quality - lam * cost)) for lam in points] == [0, 1, 2, 3]
    many_quality, many_cost = np.linspace(0.3, 0.9, 9), np.linspace(0.01, 0.9, 9) ** 2
    many = pre_points(many_quality, many_cost)
    assert len(many) == 4
    assert list(many) == sorted(many, reverse=True)
    picked = [int(np.argmax(many_quality - lam * many_cost)) for lam in many]
    assert picked[0] == 0
    assert picked[-1] == 8


def test_pre_points_need_room_for_both_ends() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        pre_points(np.array([0.5, 0.9]), np.array([0.1, 0.5]), limit=1)


def test_break_even_is_where_escalating_a_rejected_answer_stops_paying() -> None:
    matrix = synthetic_matrix(40)
    train = matrix.rows("train")
    cheap, strong = matrix.column("cheap"), matrix.column("strong")
    ref = float(matrix.mean_cost("train")[strong])
    lam = escalation_break_even(
        matrix, train, cheap=cheap, best=strong, judge_accuracy=0.9, cost_ref_usd=ref
    )
    # hard prompts (cheap wrong, strong right) are rejected 90% of the time, easy ones 10%;
    # the strong model's cost term is 0.5 on each
    hard = float(np.mean(matrix.quality[train, cheap] < 0.5))
    expected = (0.9 * hard) / (0.5 * (0.9 * hard + 0.1 * (1 - hard)))
    assert lam == pytest.approx(expected)
    points = choose_points(matrix, cheap=cheap, best=strong, judge_accuracy=0.9, cost_ref_usd=ref)
    assert points.chosen_on_train
    assert points.break_even == pytest.approx(expected)
    # from halfway (the quality end) to the break-even itself (the cost end), three digits
    half, whole = points.judged
    assert half == pytest.approx(expected / 2, rel=5e-3)
    assert whole == pytest.approx(expected, rel=5e-3)


def test_escalation_targets_are_chosen_by_value() -> None:
    """A model dearer and worse than another is never a target, however high it ranks."""
    rows = synthetic_rows(40)
    for row in rows:  # a frontier model priced above the best, and a bit worse
        if row["model"] == "mid":
            row["cost_usd"] = 0.005
            row["quality"] = 1.0 if row["task"] == "easy" or row["prompt_id"] == "p1" else 0.0
    matrix = build_matrix(rows, name="t", judge_model="cheap")
    assert value_targets(matrix, 3) == ("strong", "cheap")


def test_operating_points_refuse_bad_values() -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lambda_cost"):
            OperatingPoints(judged=(bad,), pre=(), chosen_on_train=False)


def test_a_sub_matrix_keeps_its_judge_or_bills_the_weak_model() -> None:
    matrix = synthetic_matrix(40)
    pair = restrict(matrix, ("cheap", "strong"))
    assert pair.models == ("cheap", "strong")
    assert pair.judge_model == "cheap"  # the matrix's judge (mid) is gone
    assert pair.quality.shape == (40, 2)
    assert pair.response(0, 1) == matrix.response(0, matrix.column("strong"))
    assert restrict(matrix, ("mid", "strong")).judge_model == "mid"
    with pytest.raises(ConfigError, match="nope"):
        restrict(matrix, ("cheap", "nope"))


def test_default_judge_is_never_the_best_model_of_a_pair() -> None:
    quality = np.array([[1.0, 0.0], [1.0, 1.0]])
    cost = np.array([[0.01, 0.001], [0.01, 0.001]])
    assert default_judge(("strong", "weak"), quality, cost) == "weak"
    assert default_judge(("only",), quality[:, :1], cost[:, :1]) == "only"


def test_model_names_that_cannot_be_arms_are_refused_before_any_work() -> None:
    rows = synthetic_rows(20)
    for row in rows:
        if row["model"] == "mid":
            row["model"] = "claude-3-haiku@20240307"  # Vertex-style ids are fine
    check_arm_names(build_matrix(rows, name="t", judge_model="cheap"))
    for row in rows:
        if row["model"] == "cheap":
            row["model"] = "my model"
    with pytest.raises(ConfigError, match="'my model'"):
        check_arm_names(build_matrix(rows, name="t", judge_model="strong"))
