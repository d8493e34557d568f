from typing import Any

import pytest

from router.tools.replay_pool.dataset import ModelOutcome, ReplayRecord
from router.tools.service_bench.cold_start import BEST_SINGLE, markdown, observe, summarize


def record() -> ReplayRecord:
    return ReplayRecord(
        prompt_id="p",
        prompt="q",
        task="mbpp",
        split="test",
        outcomes=(
            ModelOutcome("cheap", "cheap answer", 0.0, 0.001),
            ModelOutcome(BEST_SINGLE, "best answer", 1.0, 0.01),
        ),
    )


def result(output: str, cost: float, post: list[dict[str, Any]]) -> dict[str, Any]:
    pre = {"stage": "pre", "arm": "cheap", "signals": {}}
    return {
        "output": output,
        "cost_usd": cost,
        "trace": {"decisions": [pre, *post], "assessment": {"quality": 1.0}},
    }


def post(arm: str, failed: int = 0, judge_low: float = 0.0) -> dict[str, Any]:
    output = {"validators_failed": failed, "judge_low": judge_low}
    return {"stage": "post", "arm": arm, "signals": {"output": output}}


def test_a_failed_answer_escalated_to_the_best_model() -> None:
    seen = observe(result("best answer", 0.012, [post("escalate:best", failed=1)]), record())
    assert not seen.passed
    assert seen.escalated
    assert seen.correct == 1.0
    assert (seen.cheapest_usd, seen.best_usd) == (0.001, 0.01)


def test_escalating_what_passed_is_what_the_report_counts() -> None:
    observed = [
        observe(result("cheap answer", 0.001, [post("accept")]), record()),
        observe(result("best answer", 0.011, [post("escalate:best")]), record()),
        observe(result("best answer", 0.011, [post("escalate:best", judge_low=1.0)]), record()),
        observe(result("cheap answer", 0.001, []), record()),  # no escalation stage ran
    ]
    figures = summarize(observed)["overall"]
    assert figures["passed_share"] == 0.75
    assert figures["passed_escalated_share"] == pytest.approx(1 / 3)
    assert figures["failed_escalated_share"] == 1.0
    assert figures["quality"] == 0.5
    assert figures["cost_x_cheapest_arm"] == pytest.approx(0.024 / 0.004)
    assert figures["cost_pct_of_best_single"] == pytest.approx(100 * 0.024 / 0.04)
    assert "| all | 75.0 | 33.3 | 100.0 | 50.0 | 0.500 | 6.00 | 60.0 |" in markdown(
        summarize(observed)
    )
