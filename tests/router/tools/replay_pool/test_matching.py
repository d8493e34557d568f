"""Mapping incoming prompts to recorded ones: exact, contains, nearest."""

from __future__ import annotations

import random

import pytest

from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.replay_pool.matching import MatcherConfig, PromptMatcher


def escalation_prompt(prompt: str, failed_answer: str) -> str:
    """The kind of prompt the router builds when it escalates a failed answer."""
    return (
        "A previous model answered the task below, and its answer was judged wrong.\n"
        "Reasons: the answer does not follow the requested format.\n\n"
        f"Task:\n{prompt}\n\nPrevious answer:\n{failed_answer}\n\n"
        "Give a corrected answer."
    )


def perturb(text: str, rng: random.Random) -> str:
    """Typos in about one word in ten, one word in twenty dropped, all upper case."""
    words = []
    for word in text.split(" "):
        draw = rng.random()
        if draw < 0.05:
            continue
        if draw < 0.15 and len(word) > 2:
            at = rng.randrange(len(word))
            word = word[:at] + "q" + word[at + 1 :]
        words.append(word)
    return " ".join(words).upper()


def test_exact_match_ignores_surrounding_whitespace(
    replay_dataset: ReplayDataset, replay_matcher: PromptMatcher
) -> None:
    for record in replay_dataset.records[::97]:
        match = replay_matcher.match(f"  {record.prompt}\n")
        assert match.kind == "exact"
        assert match.record.prompt == record.prompt
        assert match.similarity == 1.0


def test_a_prompt_recorded_twice_maps_to_the_first_record(
    replay_dataset: ReplayDataset, replay_matcher: PromptMatcher
) -> None:
    text = "Write a function to sort a list of elements."
    first = next(record for record in replay_dataset if record.prompt == text)
    assert replay_matcher.match(text).record is first


def test_escalation_prompt_maps_to_the_wrapped_prompt(
    replay_dataset: ReplayDataset, replay_matcher: PromptMatcher
) -> None:
    for record in replay_dataset.records[::53]:
        wrapped = escalation_prompt(record.prompt, record.outcomes[0].response)
        match = replay_matcher.match(wrapped)
        assert match.kind == "contains"
        assert match.record.prompt == record.prompt
        assert match.similarity == pytest.approx(len(record.prompt) / len(wrapped.strip()))


def test_the_longest_contained_prompt_wins(
    replay_dataset: ReplayDataset, replay_matcher: PromptMatcher
) -> None:
    short, long = sorted(
        (replay_dataset.get("mbpp.dev.1"), replay_dataset.get("arc-challenge.test.1")),
        key=lambda record: len(record.prompt),
    )
    match = replay_matcher.match(f"Two tasks.\n{short.prompt}\n---\n{long.prompt}\nDone.")
    assert match.kind == "contains"
    assert match.record is long


def test_a_perturbed_prompt_maps_to_its_nearest_record(
    replay_dataset: ReplayDataset, replay_matcher: PromptMatcher
) -> None:
    rng = random.Random(7)
    records = rng.sample(replay_dataset.records, 100)
    hits = 0
    for record in records:
        match = replay_matcher.match(perturb(record.prompt, rng))
        assert match.kind == "nearest"
        assert 0.0 < match.similarity <= 1.0
        hits += match.record.prompt == record.prompt
    assert hits >= 97


def test_unrelated_text_has_low_similarity(replay_matcher: PromptMatcher) -> None:
    match = replay_matcher.match("Zyxwvut qponmlk jihgfed cbazyx wvutsrq.")
    assert match.kind == "nearest"
    assert match.similarity < 0.2


def test_empty_text_still_maps_somewhere(replay_matcher: PromptMatcher) -> None:
    match = replay_matcher.match("   ")
    assert (match.kind, match.similarity) == ("nearest", 0.0)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_df"):
        MatcherConfig(max_df=0.0)
    with pytest.raises(ValueError, match="sizes"):
        MatcherConfig(sizes=())
