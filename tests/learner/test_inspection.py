"""Reading a learned policy: named weights, contributions that add up to VW's own scores,
per-arm feature effects, and contexts changed one signal at a time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np
import pytest
import vowpalwabbit

from learner.config import PolicyConfig
from learner.context import ArmFeatures, Context
from learner.inspection import (
    Weight,
    contributions,
    estimated_reward,
    explain,
    feature_effects,
    feature_ranges,
    parse_readable_model,
    pmf_sweep,
    with_arm,
    with_shared,
    without_arms,
)
from learner.vw_format import adf_lines
from learner.vw_policy import VWPolicy
from learner.vw_readable import readable_model

ARMS = (("gpt-4", 2.0), ("small/model", 0.5), ("mid", 1.0))


def random_context(rng: np.random.Generator) -> Context:
    return Context(
        shared={
            "Q": {
                "log_tokens": float(rng.random() * 3),
                "language": str(rng.choice(["en", "fr"])),
                "cat_code": float(rng.random()),
            },
            "H": {"budget_used": float(rng.random())},
        },
        arms=tuple(
            ArmFeatures(
                arm,
                {"A": {"arm": arm, "log_price": price}, "S": {"error_rate": float(rng.random())}},
            )
            for arm, price in ARMS
        ),
    )


@pytest.fixture(scope="module")
def trained() -> tuple[bytes, list[Context], list[list[float]]]:
    """A ``--cb_adf`` model trained on random rounds, some held-out contexts, and VW's own
    predicted costs for them (``--cb_adf`` predicts costs, not a PMF)."""
    rng = np.random.default_rng(0)
    workspace = vowpalwabbit.Workspace("--cb_adf --quiet -q QA -q HA -l 0.5")
    try:
        for _ in range(300):
            context = random_context(rng)
            arm = int(rng.integers(len(ARMS)))
            workspace.learn(adf_lines(context, (arm, -float(rng.random()), 1 / len(ARMS))))
        held_out = [random_context(rng) for _ in range(5)]
        costs = [list(workspace.predict(adf_lines(c))) for c in held_out]
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.vw")
            workspace.save(path)
            with open(path, "rb") as handle:
                model = handle.read()
    finally:
        workspace.finish()
    return model, held_out, costs


def test_contributions_add_up_to_vw_predictions(
    trained: tuple[bytes, list[Context], list[list[float]]],
) -> None:
    model_bytes, held_out, costs = trained
    model = parse_readable_model(readable_model(model_bytes, held_out))
    assert model.interactions == ("QA", "HA")
    assert model.min_label < 0 <= model.max_label
    for context, predicted in zip(held_out, costs, strict=True):
        parts = contributions(context, model)
        mine = [-estimated_reward(parts[arm], model) for arm in context.arm_names]
        assert mine == pytest.approx(predicted, abs=1e-4)


def test_weights_are_named_and_split_into_factors(
    trained: tuple[bytes, list[Context], list[list[float]]],
) -> None:
    model_bytes, held_out, _ = trained
    model = parse_readable_model(readable_model(model_bytes, held_out))
    rows = {w.term: w for w in model.rows()}
    assert "Constant" in rows
    crossed = rows["Q^cat_code*A^arm=small/model"]
    assert (crossed.arm, crossed.feature, crossed.namespaces) == ("small/model", "Q^cat_code", "QA")
    assert rows["A^arm=mid"].feature == "(bias)"
    assert rows["S^error_rate"].arm is None
    magnitudes = [abs(w.weight) for w in model.rows()]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_weights_of_unseen_contexts_stay_unnamed(
    trained: tuple[bytes, list[Context], list[list[float]]],
) -> None:
    model_bytes, held_out, _ = trained
    narrow = Context(shared={"Q": {"cat_code": 1.0}}, arms=(ArmFeatures("mid", {"A": {}}),))
    named = parse_readable_model(readable_model(model_bytes, held_out))
    few = parse_readable_model(readable_model(model_bytes, [narrow]))
    assert set(few.weights) < set(named.weights)
    assert few.unnamed > 0
    assert len(few.weights) + few.unnamed == len(named.weights) + named.unnamed


def test_weight_rows_of_terms() -> None:
    price = Weight("H^budget_used*A^log_price", -0.2, (("H", "budget_used"), ("A", "log_price")))
    assert price.arm is None
    assert price.feature == "H^budget_used x A^log_price"
    assert price.row()["namespaces"] == "HA"
    constant = Weight("Constant", 0.1, ())
    assert (constant.namespaces, constant.feature, constant.arm) == ("Constant", "Constant", None)


def test_feature_effects_are_the_per_arm_part_of_a_change(
    trained: tuple[bytes, list[Context], list[list[float]]],
) -> None:
    model_bytes, held_out, _ = trained
    context = held_out[0]
    model = parse_readable_model(readable_model(model_bytes, held_out))
    effects = {(e.arm, e.feature): e.effect for e in feature_effects(context, model)}
    bumped = with_shared(context, "Q", {"cat_code": float(context.shared["Q"]["cat_code"]) + 0.1})
    before, after = contributions(context, model), contributions(bumped, model)
    change = {
        arm: (estimated_reward(after[arm], model) - estimated_reward(before[arm], model)) / 0.1
        for arm in context.arm_names
    }
    # The shared feature's own weight moves every arm alike: differences between arms are
    # exactly the differences of their effects (no clipping happens on these contexts).
    first = context.arm_names[0]
    for arm in context.arm_names[1:]:
        expected = effects[(arm, "Q^cat_code")] - effects[(first, "Q^cat_code")]
        assert change[arm] - change[first] == pytest.approx(expected, abs=1e-3)


class FixedPMF:
    """A PMF source that prefers arms in a fixed order and counts its calls."""

    def __init__(self, order: Sequence[str]) -> None:
        self.order = list(order)
        self.calls = 0

    def pmf(self, context: Context) -> list[float]:
        self.calls += 1
        scores = [len(self.order) - self.order.index(a) for a in context.arm_names]
        return [s / sum(scores) for s in scores]


def test_explain_joins_pmf_estimates_and_contributions(
    trained: tuple[bytes, list[Context], list[list[float]]],
) -> None:
    model_bytes, held_out, _ = trained
    context = held_out[1]
    model = parse_readable_model(readable_model(model_bytes, [context]))
    explained = explain(FixedPMF(["mid", "gpt-4", "small/model"]), context, model)
    rows = {row["arm"]: row for row in explained.arm_rows()}
    assert rows["mid"]["probability"] == pytest.approx(3 / 6)
    by_namespace: dict[str, float] = {}
    for row in explained.by_namespaces():
        arm = str(row["arm"])
        by_namespace[arm] = by_namespace.get(arm, 0.0) + float(row["reward_contribution"])
    for arm in context.arm_names:
        assert by_namespace[arm] == pytest.approx(rows[arm]["estimated_reward"], abs=1e-6)
    assert all(
        abs(float(r["reward_contribution"])) > 0.05
        for r in explained.contribution_rows(min_abs=0.05)
    )


def test_parse_rejects_other_text() -> None:
    with pytest.raises(ValueError, match="readable model"):
        parse_readable_model("hello\nworld\n")


def small_context() -> Context:
    return Context(
        shared={"Q": {"cat_code": 0.5}, "H": {"budget_used": 0.2}},
        arms=(
            ArmFeatures("a", {"A": {"arm": "a"}, "S": {"error_rate": 0.1}}),
            ArmFeatures("b", {"A": {"arm": "b"}, "S": {"log_latency": 0.3}}),
        ),
    )


def test_what_if_edits_leave_the_original_alone() -> None:
    context = small_context()
    slow = with_arm(context, "b", "S", {"log_latency": 2.0, "error_rate": 0.5})
    assert slow.arms[1].namespaces["S"] == {"log_latency": 2.0, "error_rate": 0.5}
    assert slow.arms[0] == context.arms[0]
    assert context.arms[1].namespaces["S"] == {"log_latency": 0.3}
    spent = with_shared(context, "H", {"budget_used": 0.9})
    assert spent.shared["H"]["budget_used"] == 0.9
    assert spent.shared["Q"] == context.shared["Q"]
    assert with_shared(context, "C", {"kind": "code"}).shared["C"] == {"kind": "code"}
    assert without_arms(context, ["a"]).arm_names == ("b",)
    with pytest.raises(ValueError, match="not in tuple"):
        with_arm(context, "z", "S", {})
    with pytest.raises(ValueError, match="at least one arm"):
        without_arms(context, ["a", "b"])


def test_pmf_sweep_gives_removed_arms_zero() -> None:
    context = small_context()
    source = FixedPMF(["a", "b"])
    points = pmf_sweep(source, [(0.0, context), (1.0, without_arms(context, ["a"]))], ["a", "b"])
    assert [(p.x, p.arm, p.probability) for p in points] == [
        (0.0, "a", pytest.approx(2 / 3)),
        (0.0, "b", pytest.approx(1 / 3)),
        (1.0, "a", 0.0),
        (1.0, "b", 1.0),
    ]
    assert source.calls == 2


def test_feature_ranges_count_missing_features_as_zero() -> None:
    contexts = [small_context(), with_arm(small_context(), "a", "S", {"error_rate": 0.4})]
    ranges = feature_ranges(contexts, "S", per_arm=True)
    assert ranges["error_rate"] == (0.0, 0.4)  # arm b never has one: 0
    assert ranges["log_latency"] == (0.0, 0.3)
    assert feature_ranges(contexts, "H", per_arm=False) == {"budget_used": (0.2, 0.2)}


def test_readable_model_of_a_policy_leaves_it_unchanged() -> None:
    policy = VWPolicy("pre", PolicyConfig(exploration="epsilon", epsilon=0.1, seed=1))
    try:
        context = small_context()
        for _ in range(20):
            policy.learn(context, "a", 0.5, 1.0)
        before = policy.pmf(context)
        text = readable_model(policy.state().model, [context])
        assert policy.pmf(context) == before
        model = parse_readable_model(text)
        assert "A^arm=a" in model.weights
        parts = contributions(context, model)
        best = max(context.arm_names, key=lambda arm: estimated_reward(parts[arm], model))
        assert best == context.arm_names[int(np.argmax(before))] == "a"
    finally:
        policy.close()
