import itertools
from typing import Any

import numpy as np
import pytest

from router.tools.routing_bench.ladder import (
    Aim,
    climb,
    ladder_outcomes,
    ladder_targets,
    ladder_values,
)
from router.tools.routing_bench.matrix import RoutingMatrix
from router.tools.routing_bench.operating_points import value_targets
from router.tools.routing_bench.run import BenchOptions, plan_bench, settled_arms
from router.tools.routing_bench.tables import build_matrix

COST = {"cheap": 0.0001, "filler": 0.0002, "strong": 0.001}


def complementary_matrix(
    n_prompts: int = 40, strong_misses: int = 0, filler_usd: float = COST["filler"]
) -> RoutingMatrix:
    """``cheap`` is right on the even prompts, ``filler`` on the odd ones at twice its price
    (as good on average and dearer: no single-model choice ever wants it), ``strong`` on
    every prompt but one in ``strong_misses`` (0: none) at ten times the price."""
    rows: list[dict[str, Any]] = []
    for i in range(n_prompts):
        missed = strong_misses > 0 and i % strong_misses == strong_misses - 1
        right = {"cheap": i % 2 == 0, "filler": i % 2 == 1, "strong": not missed}
        for model, cost in {**COST, "filler": filler_usd}.items():
            rows.append(
                {
                    "prompt_id": f"p{i}",
                    "prompt": f"Question {i}: what is item {i}?",
                    "task": "qa",
                    "model": model,
                    "quality": 1.0 if right[model] else 0.0,
                    "cost_usd": cost,
                    "response": f"{model} on {i}",
                    "split": "train" if i < 30 else "test",
                }
            )
    return build_matrix(rows, name="complementary", judge_model="cheap", source="test")


def test_a_ladder_pays_the_judge_on_every_answer_but_the_top_one() -> None:
    quality = np.array([[1.0, 0.0], [0.0, 1.0]])
    cost = np.array([[1.0, 10.0], [1.0, 10.0]])
    judge = np.array([0.5, 0.5])
    delivered, spent = ladder_outcomes(quality, cost, judge, [0, 1], judge_accuracy=0.9)
    # prompt 0: the right first answer is kept 9 times in 10, else replaced by a wrong one;
    # prompt 1: the wrong one is escalated 9 times in 10
    assert delivered.tolist() == pytest.approx([0.9, 0.9])
    assert spent.tolist() == pytest.approx([1.5 + 0.1 * 10, 1.5 + 0.9 * 10])


def test_the_top_of_the_ladder_answers_last_and_its_answer_is_final() -> None:
    assert climb(0, (2, 1)) == [0, 2, 1]
    assert climb(2, (2, 1)) == [2, 1]  # a rung that is the first arm is not climbed again
    assert climb(1, (2, 1)) == [1]  # the top's answer is final


def test_the_ladder_takes_a_model_no_single_choice_would() -> None:
    """``filler`` is dominated as a single model, so the train Pareto front never holds it,
    yet it is right exactly where ``cheap`` is wrong: escalating to it reaches the strong
    model's quality at a fraction of its price."""
    matrix = complementary_matrix()
    train = matrix.rows("train")
    cheap = matrix.column("cheap")
    assert "filler" not in value_targets(matrix, 3)
    targets = ladder_targets(matrix, train, firsts=[cheap], judge_accuracy=1.0, steps=2)
    assert targets == ("filler",)


def test_with_a_noisy_judge_a_ladder_must_still_reach_the_best_quality() -> None:
    """A judge right 9 times in 10 accepts some wrong answers: cheap then filler delivers
    0.9, above a strong model right on 3 prompts in 4 (and for less than escalating to it),
    below one right on 19 in 20, which no ladder from cheap reaches."""
    matrix = complementary_matrix(strong_misses=4)
    train, cheap = matrix.rows("train"), matrix.column("cheap")
    targets = ladder_targets(matrix, train, firsts=[cheap], judge_accuracy=0.9, steps=2)
    assert targets == ("filler",)
    values = ladder_values(matrix, train, firsts=[cheap], judge_accuracy=0.9, steps=2)
    by_rungs = {tuple(matrix.models[j] for j in v.rungs): v for v in values}
    assert by_rungs[("filler",)].quality == pytest.approx(0.9)
    assert by_rungs[("filler",)].cost_usd < by_rungs[("strong",)].cost_usd
    strong = complementary_matrix(strong_misses=20)
    assert (
        ladder_targets(strong, strong.rows("train"), firsts=[cheap], judge_accuracy=0.9, steps=2)
        is None
    )


def test_a_ladder_must_suit_every_first_arm_the_router_may_settle_on() -> None:
    """From strong, escalating a rejected answer to filler goes down: the judge rejects
    one right answer in ten and filler is wrong on half of those. Scored from strong, only
    the ladder topped by strong itself (its answer final) keeps strong's quality; scored
    from cheap too, nothing reaches it."""
    matrix = complementary_matrix()
    train = matrix.rows("train")
    cheap, strong = matrix.column("cheap"), matrix.column("strong")
    assert ladder_targets(matrix, train, firsts=[strong], judge_accuracy=0.9, steps=2) == (
        "strong",
    )
    assert (
        ladder_targets(matrix, train, firsts=[cheap, strong], judge_accuracy=0.9, steps=2) is None
    )


def test_rungs_below_the_top_are_climbed_cheapest_first() -> None:
    matrix = complementary_matrix()
    train = matrix.rows("train")
    values = ladder_values(matrix, train, firsts=[0], judge_accuracy=0.9, steps=3)
    cost = matrix.mean_cost("train")
    for value in values:
        below = value.rungs[:-1]
        assert all(cost[a] < cost[b] for a, b in itertools.pairwise(below))
    with pytest.raises(ValueError, match="at least one rung"):
        ladder_values(matrix, train, firsts=[0], judge_accuracy=0.9, steps=0)
    with pytest.raises(ValueError, match="at least one first arm"):
        ladder_values(matrix, train, firsts=[], judge_accuracy=0.9, steps=1)


def test_the_quality_end_climbs_to_the_best_model() -> None:
    """Topped by the best model: cheap, then filler, then strong, where strong is right on
    more than the cheap rungs together deliver."""
    matrix = complementary_matrix(strong_misses=20)
    train, cheap = matrix.rows("train"), matrix.column("cheap")
    topped = ladder_targets(
        matrix, train, firsts=[cheap], judge_accuracy=0.9, steps=2, aim="topped"
    )
    assert topped == ("strong", "filler")
    with pytest.raises(ValueError, match="aim must be one of"):
        ladder_targets(matrix, train, firsts=[cheap], judge_accuracy=0.9, steps=2, aim="dear")  # type: ignore[arg-type]


def test_each_judged_run_gets_the_ladder_of_its_end_of_the_curve() -> None:
    matrix = complementary_matrix(strong_misses=4)
    # at lambda_cost 5 and 9 the pre-generation rule settles on cheap: the chain starts there
    options = BenchOptions(variants=("pre", "chain"), seeds=(0,), lambdas=(5.0, 9.0))
    plan = plan_bench(matrix, options)
    settings = plan.settings
    firsts = sorted(settled_arms(matrix, (5.0, 9.0), settings.cost_ref_usd) | {plan.cascade_cheap})
    train = matrix.rows("train")

    def ladder(aim: Aim) -> tuple[str, ...] | None:
        return ladder_targets(matrix, train, firsts=firsts, judge_accuracy=0.9, steps=2, aim=aim)

    assert settings.targets_for(2, 9.0) == ladder("cheapest")  # the cost end
    assert settings.targets_for(2, 5.0) == ladder("topped")  # the quality end
    assert settings.targets_for(2, 5.0)[0] == "strong"
    assert settings.targets_for(1, 5.0) == settings.escalation_targets  # no such run
    front = plan_bench(matrix, BenchOptions(variants=("pre", "chain"), seeds=(0,), targets="front"))
    assert front.settings.ladders == ()
    assert front.settings.escalation_targets == value_targets(matrix, 3)
    with pytest.raises(ValueError, match="targets must be one of"):
        BenchOptions(targets="nearest")  # type: ignore[arg-type]


def test_never_a_ladder_dearer_than_the_best_model_alone() -> None:
    """Priced at twice the strong model, filler still repairs every cheap miss, but a run
    would pay more than answering everything with the strong model."""
    matrix = complementary_matrix(filler_usd=0.002)
    cheap = matrix.column("cheap")
    targets = ladder_targets(
        matrix, matrix.rows("train"), firsts=[cheap], judge_accuracy=1.0, steps=2
    )
    assert targets == ("strong",)


def test_a_first_answer_pays_the_judge_even_when_nothing_can_follow_it() -> None:
    quality = np.array([[1.0], [0.0]])
    cost = np.array([[2.0], [2.0]])
    judge = np.array([0.5, 0.5])
    delivered, spent = ladder_outcomes(quality, cost, judge, [0], judge_accuracy=0.9)
    assert delivered.tolist() == [1.0, 0.0]
    assert spent.tolist() == [2.5, 2.5]


def test_of_two_equally_good_models_the_cheaper_is_the_best() -> None:
    rows: list[dict[str, Any]] = []
    for i in range(20):
        for model, right, cost in (("a_dear", True, 0.002), ("b_strong", True, 0.001)):
            rows.append(
                {
                    "prompt_id": f"p{i}",
                    "prompt": f"Question {i}?",
                    "task": "qa",
                    "model": model,
                    "quality": 1.0 if right else 0.0,
                    "cost_usd": cost,
                    "split": "train" if i < 15 else "test",
                }
            )
    matrix = build_matrix(rows, name="tie", judge_model="b_strong", source="test")
    train = matrix.rows("train")
    assert matrix.best_on(train) == matrix.best_single("train") == matrix.column("b_strong")


def test_a_chain_that_goes_straight_to_its_strongest_target_keeps_the_front() -> None:
    matrix = complementary_matrix(strong_misses=4)
    options = BenchOptions(variants=("pre", "chain-strongest"), seeds=(0,), lambdas=(5.0, 9.0))
    settings = plan_bench(matrix, options).settings
    assert settings.ladders == ()
    assert settings.targets_for(2, 9.0) == settings.escalation_targets
