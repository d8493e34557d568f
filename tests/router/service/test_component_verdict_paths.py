"""The paths of per-component judging the replay judge cannot take (its grades are 0 or 1):
a replacement the judge grades worse than the first answer is dropped, and a judge reply
without a grade for every component is the judge's error, never a guess.

A running service over real HTTP; its arms and its judge are a scripted OpenAI-compatible
app. Both arms write the same answer (prose, a code block that parses but subtracts, more
prose); asked for a replacement code block, an arm writes one that adds. The judge replies
with the scripted grades, in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from learner.reward import RewardWeights, shape_reward
from router import trace_records
from tests.router.fake_openai import FakeOpenAI, Reply
from tests.router.service.conftest import ServiceFactory

ANSWER = "Here is add:\n\n```python\ndef add(a, b):\n    return a - b\n```\n\nIt returns the sum."
REPLACEMENT = "```python\ndef add(a, b):\n    return a + b\n```"
POOL = """
arms:
  - {name: writer, base_url: "{self}/replay/v1", model: writer,
     input_usd_per_mtok: 1, output_usd_per_mtok: 2, context_window: 100000}
  - {name: other, base_url: "{self}/replay/v1", model: other,
     input_usd_per_mtok: 1, output_usd_per_mtok: 2, context_window: 100000}
judge: {name: grader, base_url: "{self}/replay/v1", model: grader,
        input_usd_per_mtok: 1, output_usd_per_mtok: 2}
"""
STAGES = {
    "judge": "always",
    "judge_components": True,
    "escalation": False,
    "in_generation": False,
}


def grades(overall: float, parts: list[float]) -> str:
    return json.dumps(
        {
            "score": overall,
            "reason": f"overall {overall}",
            "components": [
                {"index": i, "score": s, "reason": f"part {i}"}
                for i, s in enumerate(parts, start=1)
            ],
        }
    )


@dataclass
class Scripted(FakeOpenAI):
    """The arms write ``ANSWER`` (``REPLACEMENT`` when asked for a replacement part); the
    judge model replies ``judge_replies`` in order."""

    judge_replies: list[str] = field(default_factory=list)

    def reply(self, body: dict[str, Any]) -> Reply:
        model = str(body["model"])
        prompt = str(body["messages"][-1]["content"])
        if model == "grader":
            text = self.judge_replies[sum(b["model"] == "grader" for b in self.bodies) - 1]
        else:
            text = REPLACEMENT if "Write a correct replacement" in prompt else ANSWER
        return Reply(model, text, [], "stop", len(prompt) // 4 + 1)

    def judged(self) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b["model"] == "grader"]


@pytest.fixture
def pool_file(tmp_path: Path) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(POOL)
    return path


async def test_a_replacement_graded_worse_is_dropped(
    service: ServiceFactory, pool_file: Path
) -> None:
    fake = Scripted(judge_replies=[grades(0.3, [1.0, 0.2, 1.0]), grades(0.1, [1.0, 0.0, 1.0])])
    body = {"messages": [{"role": "user", "content": "Write add(a, b)."}], "stages": STAGES}
    async with service(pool_config=pool_file, provider_app=fake.app()) as client:
        response = await client.post("/route-and-run", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        logged = (await client.get(f"/requests/{result['id']}")).json()
    writer = result["model"]
    assert result["output"] == ANSWER  # the first answer stays, whole
    judged = fake.judged()
    assert len(judged) == 2  # the first answer, then the answer with the replacement
    assert str(judged[0]["messages"][-1]["content"]).count("<component index=") == 3
    decisions = result["trace"]["decisions"]
    assert [d["stage"] for d in decisions] == ["pre", "component"]
    repair = decisions[1]
    assert repair["arm"] != writer
    assert repair["outcome"] == "replaced, then reverted: the answer got worse"
    assert repair["details"]["verdict"]["score"] == 0.2
    assert repair["details"]["replacement_verdict"] == {
        "index": 1,
        "kind": "code",
        "arm": repair["arm"],
        "score": 0.0,
        "reason": "part 2",
    }
    weights = RewardWeights()  # the pool's objective and the service's references, default
    expected = shape_reward(0.0, repair["cost_usd"], repair["latency_ms"], weights)
    assert repair["reward"] == pytest.approx(expected, abs=1e-6)
    assert result["trace"]["assessment"]["judge"]["score"] == 0.3
    parts = trace_records.component_rows(result["trace"])
    assert [(p["arm"], p["replaced"], p["score"]) for p in parts] == [
        (writer, False, 1.0),
        (writer, False, 0.2),
        (writer, False, 1.0),
    ]
    rows = trace_records.component_verdict_rows(logged)
    assert [(r["index"], r["score"], r["outcome"]) for r in rows] == [
        (0, 1.0, "kept"),
        (1, 0.2, "kept"),
        (2, 1.0, "kept"),
        (1, 0.0, "dropped"),
    ]
    # Both judge calls are in the request's cost, with the two arms' calls.
    spent = sum(d["cost_usd"] or 0.0 for d in decisions)
    assert result["cost_usd"] > spent


async def test_a_reply_without_every_grade_is_the_judges_error(
    service: ServiceFactory, pool_file: Path
) -> None:
    incomplete = json.dumps({"score": 0.2, "components": [{"index": 2, "score": 0.0}]})
    fake = Scripted(judge_replies=[incomplete])
    body = {"messages": [{"role": "user", "content": "Write add(a, b)."}], "stages": STAGES}
    async with service(pool_config=pool_file, provider_app=fake.app()) as client:
        response = await client.post("/route-and-run", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assessment = result["trace"]["assessment"]
    assert assessment["judge"] is None
    assert assessment["judge_error"].startswith("judge grader: components 1, 3 are not graded")
    assert [d["stage"] for d in result["trace"]["decisions"]] == ["pre"]  # nothing re-routed
    assert result["output"] == ANSWER
    assert len(fake.judged()) == 1
