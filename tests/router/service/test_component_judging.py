"""Per-component judging end to end: a running service, the replay pool over real HTTP, the
replay judge (``replay/judge``) noiseless (``judge_accuracy`` 1.0).

``claude-v1`` answers an MBPP prompt it got wrong with an explanation, a code block that
parses and more explanation, so only a judge can tell it wrong; ``gpt-4-1106-preview`` got
it right. Judged per component, the code fails and the prose passes: only the code is
re-routed (to gpt-4, the one other arm), the prose is kept, and the trace shows every grade.
Judged as a whole (the option off), the whole answer is escalated instead.

Exploration is uniform (epsilon 1), so a request starts on either arm; each test sends a
few and checks those that started on claude-v1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from features.components import check_component, split_components
from features.validators import Expectations, run_validators
from router import trace_records
from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord
from tests.router.service.conftest import ServiceClient, ServiceFactory
from tests.router.service.test_lifecycle import POOL, UNIFORM

WRONG = "claude-v1"
RIGHT = "gpt-4-1106-preview"
NOISELESS = {"judge_accuracy": 1.0}


@pytest.fixture
def pool_file(tmp_path: Path) -> Path:
    """The two-arm pool of the lifecycle tests: claude-v1, and gpt-4 as the target."""
    path = tmp_path / "pool.yaml"
    path.write_text(POOL)
    return path


def wrong_with_prose_and_code(dataset: ReplayDataset) -> ReplayRecord:
    """An MBPP prompt claude-v1 got wrong with prose and code that pass every local check,
    and gpt-4 got right with a code block that parses."""
    for record in dataset:
        wrong, right = record.outcome(WRONG), record.outcome(RIGHT)
        if record.task != "mbpp" or wrong.correct >= 0.5 or right.correct < 0.5:
            continue
        parts = split_components(wrong.response)
        if {c.kind for c in parts} != {"code", "prose"} or any(map(check_component, parts)):
            continue
        if not run_validators(wrong.response, Expectations()).passed:
            continue
        if any(
            c.kind == "code" and not check_component(c) for c in split_components(right.response)
        ):
            return record
    raise AssertionError("no suitable MBPP record")


def code_of(text: str) -> str:
    return next(c.text for c in split_components(text) if c.kind == "code").strip()


async def started_on_wrong(
    client: ServiceClient, body: dict[str, Any], tries: int = 12
) -> list[dict[str, Any]]:
    hits = []
    for _ in range(tries):
        response = await client.post("/route-and-run", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        if result["trace"]["decisions"][0]["arm"] == WRONG:
            hits.append(result)
    assert hits, "the uniform policy never drew claude-v1"
    return hits


async def test_only_the_failed_code_is_rerouted_and_the_prose_is_kept(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = wrong_with_prose_and_code(replay_dataset)
    wrong_answer = record.outcome(WRONG).response
    parts = split_components(wrong_answer)
    code_index = next(i for i, c in enumerate(parts) if c.kind == "code")
    stages = {"judge": "always", "judge_components": True, "in_generation": False}
    body = {"messages": [{"role": "user", "content": record.prompt}], "stages": stages}
    async with service(**UNIFORM, pool_config=pool_file, replay=NOISELESS) as client:
        hits = await started_on_wrong(client, body)
        accepted = []
        for result in hits:
            decisions = result["trace"]["decisions"]
            pre = decisions[0]
            # The first answer's grades: the code failed, every prose part passed.
            first = pre["details"]["component_verdicts"]
            assert [(v["index"], v["kind"], v["arm"]) for v in first] == [
                (i, c.kind, WRONG) for i, c in enumerate(parts)
            ]
            assert [v["score"] for v in first] == [0.0 if c.kind == "code" else 1.0 for c in parts]
            # Only the code was re-routed, by the component policy, on the judge's word.
            rerouted = [d for d in decisions if d["stage"] == "component"]
            assert len(rerouted) == 1
            repair = rerouted[0]
            assert repair["arm"] == RIGHT
            assert repair["outcome"] == "replaced"
            assert repair["details"]["source"] == "judge"
            assert repair["details"]["component"] == code_index
            assert repair["details"]["failure"].startswith("judge verdict: judge ")
            assert repair["details"]["replacement_verdict"]["arm"] == RIGHT
            assert repair["details"]["replacement_verdict"]["score"] == 1.0
            post = [d for d in decisions if d["stage"] == "post"]
            assert len(post) == 1
            if post[0]["outcome"] == "accepted":
                accepted.append(result)
        assert accepted, "the escalation stage never accepted the repaired answer"

        result = accepted[0]
        output = result["output"]
        assert code_of(record.outcome(RIGHT).response) in output
        assert code_of(wrong_answer) not in output
        for part in parts:
            if part.kind == "prose":
                assert part.text.strip() in output
        assert result["model"] == WRONG  # the answer is still claude's, with gpt-4's code
        rows = trace_records.component_rows(result["trace"])
        assert [(r["kind"], r["arm"], r["replaced"], r["score"]) for r in rows] == [
            (c.kind, RIGHT, True, 1.0) if c.kind == "code" else (c.kind, WRONG, False, 1.0)
            for c in parts
        ]
        judge = result["trace"]["assessment"]["judge"]
        assert judge["score"] == 1.0
        assert len(judge["components"]) == len(parts)
        # Two judge calls (the first answer, the repaired one), each billed the same.
        spent = sum(d["cost_usd"] or 0.0 for d in result["trace"]["decisions"])
        assert result["cost_usd"] == pytest.approx(spent + 2 * judge["cost_usd"])

        # The logged request shows the same grades, and which parts were replaced or kept.
        logged = await client.get(f"/requests/{result['id']}")
        assert logged.status_code == 200, logged.text
        verdicts = trace_records.component_verdict_rows(logged.json())
        assert trace_records.component_rows(logged.json()["trace"]) == rows
    assert [(r["index"], r["arm"], r["score"], r["outcome"]) for r in verdicts] == [
        *(
            (i, WRONG, 0.0, "replaced") if c.kind == "code" else (i, WRONG, 1.0, "kept")
            for i, c in enumerate(parts)
        ),
        (code_index, RIGHT, 1.0, "kept"),
    ]


async def test_judged_as_a_whole_the_answer_is_escalated_whole(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = wrong_with_prose_and_code(replay_dataset)
    stages = {"judge": "always", "in_generation": False}  # judge_components is off by default
    body = {"messages": [{"role": "user", "content": record.prompt}], "stages": stages}
    async with service(**UNIFORM, pool_config=pool_file, replay=NOISELESS) as client:
        hits = await started_on_wrong(client, body)
    escalated = 0
    for result in hits:
        decisions = result["trace"]["decisions"]
        assert all(d["stage"] != "component" for d in decisions)
        assert "component_verdicts" not in decisions[0]["details"]
        assert result["trace"]["assessment"]["judge"] is not None
        assert "components" not in result["trace"]["assessment"]["judge"]
        post = next(d for d in decisions if d["stage"] == "post")
        if post["arm"] == f"escalate:{RIGHT}":
            escalated += 1
            assert result["model"] == RIGHT
            assert result["output"] == record.outcome(RIGHT).response
    assert escalated, "no answer the judge failed was escalated"
