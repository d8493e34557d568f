"""The replayed judge, per component: the components that carry the answer take their recorded
answer's label, the others are right, each flipped on its own, deterministically; its reply
is what the router's strict per-component parser reads."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from features.components import Component, split_components
from features.errors import RequestError
from router.lifecycle.judge import component_judge_messages, parse_component_scores
from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord
from router.tools.replay_pool.judge import JUDGE_BILLED_AS, ReplayJudge, Verdict
from router.tools.replay_pool.matching import PromptMatcher


def judge(matcher: PromptMatcher, dataset: ReplayDataset, accuracy: float) -> ReplayJudge:
    return ReplayJudge(matcher, models=dataset.models, accuracy=accuracy, seed=1)


def grade(judge: ReplayJudge, record: ReplayRecord, components: Sequence[Component]) -> Verdict:
    """The verdict on ``components`` in the prompt the router sends."""
    messages = ({"role": "user", "content": record.prompt},)
    _, user = component_judge_messages(messages, components)
    return judge.judge(str(user["content"]))


def scores(verdict: Verdict) -> list[float]:
    _, _, graded = parse_component_scores(verdict.content(), len(verdict.parts))
    return [score for score, _ in graded]


def prose_and_code(text: str) -> bool:
    return {c.kind for c in split_components(text)} == {"code", "prose"}


def wrong_and_right(dataset: ReplayDataset) -> tuple[ReplayRecord, str, str]:
    """An MBPP prompt with a wrong answer of prose and code, and a right answer with code:
    the record and the two models."""
    for record in dataset:
        if record.task != "mbpp":
            continue
        wrong = [o for o in record.outcomes if o.correct < 0.5 and prose_and_code(o.response)]
        right = [o for o in record.outcomes if o.correct >= 0.5 and prose_and_code(o.response)]
        if wrong and right:
            return record, wrong[0].model, right[0].model
    raise AssertionError("no suitable MBPP record")


def test_the_code_of_a_wrong_answer_fails_and_its_prose_passes(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    record, wrong, _ = wrong_and_right(replay_dataset)
    components = split_components(record.outcome(wrong).response)
    verdict = grade(judge(replay_matcher, replay_dataset, 1.0), record, components)
    assert verdict.match.record is record
    assert verdict.answer_model == wrong
    assert not verdict.correct
    assert scores(verdict) == [0.0 if c.kind == "code" else 1.0 for c in components]
    assert verdict.cost_usd == record.outcome(JUDGE_BILLED_AS).cost_usd
    score, _, _ = parse_component_scores(verdict.content(), len(components))
    assert score == 0.0


def test_every_component_of_a_right_answer_passes(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    record, _, right = wrong_and_right(replay_dataset)
    components = split_components(record.outcome(right).response)
    verdict = grade(judge(replay_matcher, replay_dataset, 1.0), record, components)
    assert verdict.correct
    assert scores(verdict) == [1.0] * len(components)


def test_code_from_a_right_answer_passes_beside_the_wrong_answers_prose(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    """What the judge sees after a component was re-routed: the prose of one answer, the
    code of another; the code is graded by the answer it comes from."""
    record, wrong, right = wrong_and_right(replay_dataset)
    right_code = next(
        c for c in split_components(record.outcome(right).response) if c.kind == "code"
    )
    components = [
        right_code if c.kind == "code" else c
        for c in split_components(record.outcome(wrong).response)
    ]
    verdict = grade(judge(replay_matcher, replay_dataset, 1.0), record, components)
    assert verdict.correct
    assert verdict.answer_model == right
    assert {p.answer_match for p in verdict.parts if p.carries} == {"part"}


def test_without_code_the_prose_carries_the_answer(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    def prose_only_wrong(record: ReplayRecord) -> str | None:
        return next(
            (
                o.response
                for o in record.outcomes
                if o.correct < 0.5 and len(o.response.strip()) > 40 and "```" not in o.response
            ),
            None,
        )

    record = next(r for r in replay_dataset if prose_only_wrong(r) is not None)
    text = prose_only_wrong(record)
    assert text is not None
    middle = len(text) // 2
    components = [Component("prose", text[:middle]), Component("prose", text[middle:])]
    verdict = grade(judge(replay_matcher, replay_dataset, 1.0), record, components)
    assert scores(verdict) == [0.0, 0.0]
    assert all(p.carries for p in verdict.parts)


def test_accuracy_zero_flips_every_component(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    record, wrong, _ = wrong_and_right(replay_dataset)
    components = split_components(record.outcome(wrong).response)
    verdict = grade(judge(replay_matcher, replay_dataset, 0.0), record, components)
    assert scores(verdict) == [1.0 if c.kind == "code" else 0.0 for c in components]
    assert not verdict.correct  # its prose parts are now "wrong"


def test_noise_per_component_matches_the_accuracy_and_is_deterministic(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    noisy = judge(replay_matcher, replay_dataset, 0.9)
    perfect = judge(replay_matcher, replay_dataset, 1.0)
    cases = []
    for record in replay_dataset:
        if record.task != "mbpp":
            continue
        for outcome in record.outcomes[:4]:
            components = split_components(outcome.response)
            if len(components) >= 2:
                cases.append((record, components))
        if len(cases) >= 250:
            break
    truths = [scores(grade(perfect, r, c)) for r, c in cases]
    given = [scores(grade(noisy, r, c)) for r, c in cases]
    pairs = [
        (g, t) for gs, ts in zip(given, truths, strict=True) for g, t in zip(gs, ts, strict=True)
    ]
    agreement = sum(g == t for g, t in pairs) / len(pairs)
    assert len(pairs) > 500
    assert agreement == pytest.approx(0.9, abs=0.04)
    assert given[::-1] == [scores(grade(noisy, r, c)) for r, c in reversed(cases)]


def test_misnumbered_components_are_refused(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    record, _, _ = wrong_and_right(replay_dataset)
    text = (
        f"Request:\n{record.prompt}\n\n"
        '<component index="2" kind="prose">\nHi\n</component>\n'
        '<component index="1" kind="code">\n```\nx\n```\n</component>'
    )
    with pytest.raises(RequestError, match="not numbered 1, 2"):
        judge(replay_matcher, replay_dataset, 1.0).judge(text)
