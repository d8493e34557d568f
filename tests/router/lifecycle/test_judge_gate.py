"""The judge gate's pure core: its rule, its context, its rewards, and the draw's floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.historical import ArmHistory
from features.verdicts import ValidationResult, ValidationSummary
from learner.context import ArmFeatures, Context
from learner.reward import RewardWeights, shape_reward
from router.lifecycle.decisions import Decider, Rule
from router.lifecycle.journal import Journal
from router.lifecycle.judge import should_judge
from router.lifecycle.judge_gate import (
    ASK,
    SKIP,
    asked_rewards,
    estimated_quality,
    gate_features,
    gate_rule,
    history_band,
)
from router.pool import Arm
from tests.router.lifecycle.fakes import FixedPolicies

WEIGHTS = RewardWeights(lambda_cost=0.3, lambda_latency=0.0, cost_ref_usd=0.01)
CHECKED = ValidationSummary((ValidationResult("python_syntax", True, True, ""),))
UNCHECKED = ValidationSummary((ValidationResult("length", True, True, ""),))
CHEAP = Arm(
    name="cheap",
    base_url="http://cheap.invalid/v1",
    model="cheap",
    input_usd_per_mtok=0.5,
    output_usd_per_mtok=1.5,
)
JUDGE = Arm(
    name="judge",
    base_url="http://judge.invalid/v1",
    model="judge",
    input_usd_per_mtok=1.0,
    output_usd_per_mtok=3.0,
)


CONTEXT = Context(
    shared={"G": {"checked": 1.0}},
    arms=(ArmFeatures(ASK, {"A": {"action": ASK}}), ArmFeatures(SKIP, {"A": {"action": SKIP}})),
)


def reward_of(quality: float) -> float:
    """The reward of an answer of ``quality`` for free."""
    return shape_reward(quality, 0.0, 0.0, WEIGHTS)


def test_the_rule_is_the_configured_judge_mode() -> None:
    assert gate_rule("always", CHECKED, "high", "cheap").action == ASK
    assert gate_rule("always", UNCHECKED, "high", "cheap").action == ASK
    assert gate_rule("on_doubt", CHECKED, "high", "cheap").action == SKIP
    assert gate_rule("on_doubt", UNCHECKED, "low", "cheap").action == ASK
    # One bucket per validators' reach, history band and answering arm.
    assert gate_rule("always", CHECKED, "high", "cheap").bucket == "checked|high|cheap"
    assert gate_rule("on_doubt", UNCHECKED, "unknown", "x").bucket == "unchecked|unknown|x"


def test_answers_the_gate_does_not_see_are_judged_by_its_rule() -> None:
    rng = np.random.default_rng(0)
    assert should_judge("learned", 0.0, CHECKED, rng, "always")
    assert not should_judge("learned", 1.0, CHECKED, rng, "on_doubt")
    assert should_judge("learned", 0.0, UNCHECKED, rng, "on_doubt")


def test_the_history_band_reads_the_neighbours_rewards_as_quality() -> None:
    assert estimated_quality(reward_of(1.0), WEIGHTS) == pytest.approx(1.0)
    assert estimated_quality(reward_of(0.0), WEIGHTS) == pytest.approx(0.0)
    assert estimated_quality(reward_of(0.7), WEIGHTS) == pytest.approx(0.7)
    assert history_band(None, WEIGHTS) == "unknown"
    assert history_band(ArmHistory(reward_of(1.0), 2, 1.0), WEIGHTS) == "unknown"
    assert history_band(ArmHistory(reward_of(0.95), 5, 1.0), WEIGHTS) == "high"
    assert history_band(ArmHistory(reward_of(0.7), 5, 1.0), WEIGHTS) == "mid"
    assert history_band(ArmHistory(reward_of(0.2), 5, 1.0), WEIGHTS) == "low"


def test_the_context_holds_validators_arm_history_and_the_judges_price() -> None:
    history = ArmHistory(reward_of(0.9), 7, 1.0, spread=0.3)
    features = gate_features(CHECKED, CHEAP, JUDGE, history, WEIGHTS)
    assert features["checked"] == 1.0
    assert features["validators"] == 1.0
    assert features["arm"] == "cheap"
    assert features["est_quality"] == pytest.approx(0.9, abs=1e-4)
    assert features["log_count"] == pytest.approx(math.log1p(7), abs=1e-4)
    assert features["spread"] == 0.3
    assert features["log_judge_price"] == pytest.approx(math.log(2.0), abs=1e-4)
    unseen = gate_features(UNCHECKED, CHEAP, None, None, WEIGHTS)
    assert unseen["checked"] == 0.0
    assert unseen["unseen"] == 1.0
    assert "log_judge_price" not in unseen
    assert "est_quality" not in unseen


def rewards(first: float, final: float, spent_after: float) -> tuple[float, float]:
    return asked_rewards(
        WEIGHTS,
        first_quality=first,
        final_quality=final,
        answer_cost_usd=0.002,
        spent_after_usd=spent_after,
        answer_latency_ms=0.0,
        total_latency_ms=0.0,
    )


def test_asking_earns_more_exactly_where_escalation_repairs_the_answer() -> None:
    # A right answer: the verdict changes nothing, asking costs the judge's price.
    ask, skip = rewards(first=1.0, final=1.0, spent_after=0.001)
    assert ask < skip
    assert ask == pytest.approx(shape_reward(1.0, 0.003, 0.0, WEIGHTS))
    assert skip == pytest.approx(shape_reward(1.0, 0.002, 0.0, WEIGHTS))
    # A wrong answer the verdict had escalated and repaired: worth the judge and the escalation.
    ask, skip = rewards(first=0.0, final=1.0, spent_after=0.011)
    assert ask > skip
    # A wrong answer escalation did not repair: the judge and the escalation were wasted.
    ask, skip = rewards(first=0.0, final=0.0, spent_after=0.011)
    assert ask < skip


def test_the_gate_explores_only_by_asking_and_not_when_frozen() -> None:
    """A skip the rule (and a certain policy) would always take still asks now and then
    while learning; an ask is never explored away (a skip teaches nothing); scored frozen,
    the anchored action is taken outright."""
    rule = Rule(SKIP, "checked|high|cheap")
    certain = FixedPolicies([0.0, 1.0])
    learning = Decider(certain, np.random.default_rng(0), learn=True)  # type: ignore[arg-type]
    drawn = learning.draw(Journal("r", "t", None), "judge", CONTEXT, rule, probe=(ASK, 0.05))
    assert drawn.pmf[ASK] == pytest.approx(0.05)
    assert drawn.pmf[SKIP] == pytest.approx(0.95)
    frozen = Decider(certain, np.random.default_rng(0), learn=False)  # type: ignore[arg-type]
    drawn = frozen.draw(Journal("r", "t", None), "judge", CONTEXT, rule, probe=(ASK, 0.05))
    assert drawn.pmf == {ASK: 0.0, SKIP: 1.0}
    uniform = Decider(FixedPolicies([0.5, 0.5]), np.random.default_rng(0), learn=True)  # type: ignore[arg-type]
    asks = Rule(ASK, "unchecked|low|cheap")
    drawn = uniform.draw(Journal("r", "t", None), "judge", CONTEXT, asks, probe=(ASK, 0.05))
    assert drawn.pmf == {ASK: 1.0, SKIP: 0.0}


async def test_an_asked_decision_teaches_the_skip_it_did_not_take() -> None:
    """The skip counterfactual is learned with the probability of asking (the chance it was
    observed), counts as the bucket's evidence beside the ask reward, and is not journaled."""
    registry = FixedPolicies([0.5, 0.5])
    decider = Decider(registry, np.random.default_rng(1), learn=True)  # type: ignore[arg-type]
    journal = Journal("r", "t", None)
    rule = Rule(ASK, "unchecked|unknown|cheap")
    drawn = decider.draw(journal, "judge", CONTEXT, rule, probe=(ASK, 0.05))
    while drawn.action != ASK:
        drawn = decider.draw(journal, "judge", CONTEXT, rule, probe=(ASK, 0.05))
    await decider.settle_with_counterfactual(journal, drawn, 0.6, SKIP, 0.8)
    assert [learned[1:] for learned in registry.learned] == [
        (ASK, drawn.probability, 0.6),
        (SKIP, drawn.probability, 0.8),
    ]
    evidence = registry.evidence("judge")
    assert evidence.count(rule.bucket, ASK) == 1  # once, as one half of a pair
    assert evidence.mean(rule.bucket, ASK) == 0.6
    assert evidence.mean(rule.bucket, SKIP) == 0.8
    assert [r.value for r in journal.rewards] == [0.6]
    frozen = Decider(registry, np.random.default_rng(1), learn=False)  # type: ignore[arg-type]
    await frozen.settle_with_counterfactual(journal, drawn, 0.1, SKIP, 0.1)
    assert len(registry.learned) == 2  # evaluation mode learns nothing
    assert [r.value for r in journal.rewards] == [0.6, 0.1]  # but logs the reward
