"""What-if effects of system signals, on a policy whose answer is known."""

from __future__ import annotations

import math

import pytest

from learner.context import ArmFeatures, Context
from learner.signal_effects import system_signal_effects

PRICE = {"cheap": 0.1, "dear": 1.0}


class Softmax:
    """Scores each arm ``sign * (latency + errors + low headroom) + budget * price``."""

    def __init__(self, sign: float) -> None:
        self.sign = sign

    def pmf(self, context: Context) -> list[float]:
        budget = float(context.shared.get("H", {}).get("budget_used", 0.0))
        scores = []
        for arm in context.arms:
            health = arm.namespaces.get("S", {})
            trouble = sum(
                float(health.get(k, 0.0)) for k in ("slowdown", "error_rate", "low_headroom")
            )
            scores.append(self.sign * (trouble + 3.0 * budget * PRICE[arm.arm]))
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        return [w / sum(weights) for w in weights]


def contexts() -> list[Context]:
    return [
        Context(
            shared={"H": {"budget_used": 0.2}},
            arms=tuple(
                ArmFeatures(arm=arm, namespaces={"S": {"error_rate": 0.1, "slowdown": 0.3}})
                for arm in PRICE
            ),
        )
    ]


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_each_effect_has_the_sign_of_the_policy(sign: float) -> None:
    effects = system_signal_effects(Softmax(sign), contexts(), PRICE)
    assert [e.signal for e in effects] == [
        "latency_ms",
        "error_rate",
        "low_headroom",
        "budget_used",
    ]
    for effect in effects:
        assert effect.contexts == 1
        assert abs(effect.effect) > 0.01
        assert effect.right is (sign < 0), effect
        assert effect.row()["right_sign"] is effect.right


def test_no_contexts_have_no_effect() -> None:
    effects = system_signal_effects(Softmax(-1.0), [], PRICE)
    assert [e.effect for e in effects] == [0.0, 0.0, 0.0, 0.0]
