"""The replayed judge: recorded labels, seeded order-independent noise, recorded cost."""

from __future__ import annotations

import json

import httpx
import pytest

from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord
from router.tools.replay_pool.judge import JUDGE_BILLED_AS, JUDGE_MODEL, ReplayJudge, identify
from router.tools.replay_pool.matching import PromptMatcher


def judge_prompt(record: ReplayRecord, candidate: str) -> str:
    return (
        "Judge whether the answer solves the task. Reply with JSON.\n\n"
        f"Task:\n{record.prompt}\n\n<answer>{candidate}</answer>"
    )


def judge(matcher: PromptMatcher, dataset: ReplayDataset, accuracy: float) -> ReplayJudge:
    return ReplayJudge(matcher, models=dataset.models, accuracy=accuracy, seed=1)


def mixed_record(dataset: ReplayDataset) -> ReplayRecord:
    """A code prompt that some models got right and some wrong."""
    return next(
        r for r in dataset if r.task == "mbpp" and len({o.correct for o in r.outcomes}) == 2
    )


def test_a_perfect_judge_replays_the_labels(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    perfect = judge(replay_matcher, replay_dataset, 1.0)
    record = mixed_record(replay_dataset)
    for outcome in record.outcomes:
        verdict = perfect.judge(judge_prompt(record, outcome.response))
        assert verdict.match.record is record
        assert verdict.correct == (outcome.correct == 1.0)
        assert verdict.cost_usd == record.outcome(JUDGE_BILLED_AS).cost_usd


def test_a_judge_with_accuracy_zero_inverts_them(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    inverted = judge(replay_matcher, replay_dataset, 0.0)
    record = mixed_record(replay_dataset)
    for outcome in record.outcomes:
        verdict = inverted.judge(judge_prompt(record, outcome.response))
        assert verdict.correct != (outcome.correct == 1.0)


def test_noise_matches_the_accuracy_and_is_deterministic(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    noisy = judge(replay_matcher, replay_dataset, 0.9)
    records = replay_dataset.in_split("test")[::3]
    prompts = [(judge_prompt(r, r.outcome(JUDGE_BILLED_AS).response), r) for r in records]
    verdicts = [noisy.judge(text).correct for text, _ in prompts]
    truths = [r.outcome(JUDGE_BILLED_AS).correct == 1.0 for _, r in prompts]
    agreement = sum(v == t for v, t in zip(verdicts, truths, strict=True)) / len(verdicts)
    assert agreement == pytest.approx(0.9, abs=0.05)
    assert verdicts[::-1] == [noisy.judge(text).correct for text, _ in reversed(prompts)]


def test_candidate_is_identified_loosely(replay_dataset: ReplayDataset) -> None:
    record = mixed_record(replay_dataset)
    outcome = record.outcomes[3]
    found, how = identify(f"  {outcome.response}\n", record)
    assert how == "exact"
    assert found is not None
    assert found.response.strip() == outcome.response.strip()
    edited = outcome.response.replace("def ", "def  ", 1) + "\n# edited"
    found, how = identify(edited, record)
    assert how in ("contains", "nearest")
    assert found is not None
    assert identify("", record) == (None, "none")
    assert identify("Zyxwvut qponmlk", record) == (None, "none")


def test_without_answer_tags_the_text_after_the_prompt_is_judged(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    perfect = judge(replay_matcher, replay_dataset, 1.0)
    record = replay_dataset.get("mbpp.dev.1")
    outcome = record.outcome("gpt-4-1106-preview")
    verdict = perfect.judge(f"{record.prompt}\n{outcome.response}")
    assert verdict.answer_match == "exact"
    assert verdict.correct == (outcome.correct == 1.0)


async def test_the_judge_model_answers_json_over_http(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = mixed_record(replay_dataset)
    body = {
        "model": JUDGE_MODEL,
        "messages": [{"role": "user", "content": judge_prompt(record, "nonsense ###")}],
        "response_format": {"type": "json_object"},
    }
    response = await replay_client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    verdict = json.loads(response.json()["choices"][0]["message"]["content"])
    assert verdict["verdict"] in ("correct", "incorrect")
    assert verdict["score"] in (0.0, 1.0)
    assert verdict["prompt_id"] == record.prompt_id
    assert response.json()["usage"]["cost_usd"] == record.outcome(JUDGE_BILLED_AS).cost_usd
    assert response.headers["x-replay-prompt-id"] == record.prompt_id
