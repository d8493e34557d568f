"""A prompt's words: the ASCII fast path splits as the regular expression does, and the
words of a text are split once for its readers."""

from __future__ import annotations

import re
from collections import Counter

from features.words import RECENT_TEXTS, words_in, words_of
from tests.features.test_embedding import corpus

_WORD = re.compile(r"\w+")


def test_words_of_splits_as_the_regular_expression() -> None:
    for text in corpus(200):
        assert words_of(text) == _WORD.findall(text.lower())


def test_words_in_gives_the_words_in_order_and_their_counts() -> None:
    text = "Why? Why not: the cat, THE dog and the_cat 42"
    words = words_in(text)
    assert " ".join(words.sequence) == "why why not the cat the dog and the_cat 42"
    assert dict(words.counts) == dict(Counter(words.sequence))
    assert list(words.counts) == ["why", "not", "the", "cat", "dog", "and", "the_cat", "42"]


def test_a_texts_words_are_split_once_for_its_readers() -> None:
    text = "a prompt read by the embedding, the query signals and the language guess"
    first = words_in(text)
    assert words_in(text) is first
    for n in range(RECENT_TEXTS):  # enough other texts push it out: split again, alike
        words_in(f"another prompt {n}")
    again = words_in(text)
    assert again is not first
    assert again == first
