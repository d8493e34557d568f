"""The learned judge gate end to end: a running service, the replay pool over real HTTP, the
replay judge noiseless.

``claude-v1`` answers an MBPP prompt wrongly with code that parses, so the validators pass
it and only the judge can tell; ``gpt-4-1106-preview`` answers it right. With ``judge:
learned`` the gate decides whether the judge is asked: from ``judge_rule: on_doubt`` it
skips (a validator checked the code) and the wrong answer is accepted unjudged; from
``always`` it asks, the judge fails the answer, escalation repairs it, and the gate's reward
is the request's final utility, its judge call included. Exploring, the gate takes the other
action now and then, so each test checks the decisions it sees on either path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from learner.reward import RewardWeights, shape_reward
from router.lifecycle.judge_gate import MIN_NEIGHBOURS
from router.tools.replay_pool.dataset import ReplayDataset
from tests.router.service.conftest import ServiceFactory
from tests.router.service.test_component_judging import (
    NOISELESS,
    RIGHT,
    WRONG,
    started_on_wrong,
    wrong_with_prose_and_code,
)
from tests.router.service.test_lifecycle import POOL, UNIFORM

WEIGHTS = RewardWeights(lambda_cost=0.3, lambda_latency=0.0, cost_ref_usd=0.01)


@pytest.fixture
def pool_file(tmp_path: Path) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(POOL)
    return path


def body(prompt: str, rule: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": prompt}],
        "stages": {
            "judge": "learned",
            "judge_rule": rule,
            "components": False,
            "in_generation": False,
        },
        "objective": {"lambda_cost": 0.3, "lambda_latency": 0.0},
    }


def gate_of(result: dict[str, Any]) -> dict[str, Any]:
    gates = [d for d in result["trace"]["decisions"] if d["stage"] == "judge"]
    assert len(gates) == 1, "one gate decision per request (on the first answer)"
    gate: dict[str, Any] = gates[0]
    return gate


def check_skipped(result: dict[str, Any], gate: dict[str, Any]) -> None:
    assert gate["outcome"] == "skipped; accepted unjudged"
    assert gate["reward"] is None  # a skipped answer has no verdict to reward it with
    decisions = result["trace"]["decisions"]
    post = next(d for d in decisions if d["stage"] == "post")
    assert post["details"]["assessment"]["judge"] is None  # the first answer went unjudged
    assert post["details"]["assessment"]["quality"] == 1.0  # as far as the validators saw
    if post["arm"] == "accept":  # (the escalation policy explores too)
        assert result["model"] == WRONG
        assert result["cost_usd"] == pytest.approx(decisions[0]["cost_usd"])  # no judge paid


def check_asked(result: dict[str, Any], gate: dict[str, Any]) -> None:
    assert gate["outcome"] == "asked the judge"
    decisions = result["trace"]["decisions"]
    pre = decisions[0]
    post = next(d for d in decisions if d["stage"] == "post")
    judged = post["details"]["assessment"]["judge"]
    assert judged["score"] == 0.0  # the noiseless judge fails the wrong answer
    assert gate["cost_usd"] == pytest.approx(judged["cost_usd"])
    final = result["trace"]["assessment"]["quality"]
    # Asking earned the request's final utility, for everything it cost (the judge too).
    assert gate["reward"] == pytest.approx(shape_reward(final, result["cost_usd"], 0.0, WEIGHTS))
    # Skipping would have earned the first answer as judged, for its own cost.
    skip = shape_reward(0.0, pre["cost_usd"], 0.0, WEIGHTS)
    assert gate["details"]["skip_reward"] == pytest.approx(skip)
    if post["arm"] == f"escalate:{RIGHT}":
        assert result["model"] == RIGHT
        assert gate["reward"] > skip  # the verdict paid for itself: escalation repaired it


def expected_band(signals: dict[str, Any]) -> str:
    """The history band the gate's own signals imply (``history_band``'s thresholds)."""
    count = 0 if "unseen" in signals else round(math.expm1(signals["log_count"]))
    if count < MIN_NEIGHBOURS:
        return "unknown"
    quality = signals["est_quality"]
    return "high" if quality >= 0.9 else "mid" if quality >= 0.6 else "low"


async def test_the_gate_skips_from_on_doubt_and_asks_from_always(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = wrong_with_prose_and_code(replay_dataset)
    seen: dict[str, list[str]] = {"on_doubt": [], "always": []}
    async with service(**UNIFORM, pool_config=pool_file, replay=NOISELESS) as client:
        for rule in ("on_doubt", "always"):
            for result in await started_on_wrong(client, body(record.prompt, rule), tries=16):
                gate = gate_of(result)
                assert gate["details"]["rule"] == ("skip" if rule == "on_doubt" else "ask")
                reach, band, arm = gate["details"]["bucket"].split("|")
                # The same prompt again: its neighbours are the earlier requests.
                assert (reach, arm) == ("checked", WRONG)
                assert band == expected_band(gate["signals"]["gate"])
                assert gate["signals"]["gate"]["checked"] == 1.0
                assert gate["signals"]["gate"]["arm"] == WRONG
                # Anchored to the rule; only asking is explored (5% where the rule skips).
                expected = {"skip": 0.95, "ask": 0.05} if rule == "on_doubt" else {"ask": 1.0}
                assert {a: p for a, p in gate["pmf"].items() if p > 0} == pytest.approx(expected)
                if gate["arm"] == "skip":
                    check_skipped(result, gate)
                else:
                    check_asked(result, gate)
                seen[rule].append(gate["arm"])
                if gate["arm"] == "ask":  # the logged request has the gate's reward
                    logged = await client.get(f"/requests/{result['id']}")
                    assert logged.status_code == 200, logged.text
                    rows = [d for d in logged.json()["decisions"] if d["stage"] == "judge"]
                    assert len(rows) == 1
                    assert rows[0]["outcome"] == "asked the judge"
                    assert [r["value"] for r in rows[0]["rewards"]] == [
                        pytest.approx(gate["reward"])
                    ]  # the skip counterfactual is learned, never logged as a reward
    assert "skip" in seen["on_doubt"], "from on_doubt, the gate skipped a checked answer"
    assert seen["always"], "no request started on claude-v1"
    assert set(seen["always"]) == {"ask"}, "from always, the gate asks (skip is never explored)"
