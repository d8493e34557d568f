"""Hashed character n-grams: stable, bounded, case-folded, substring-monotone."""

from __future__ import annotations

import numpy as np
import pytest

from router.tools.replay_pool.ngrams import bag, codepoints, ngram_ids, text_ngram_ids


def test_one_id_per_ngram_within_bounds() -> None:
    ids = ngram_ids(codepoints("abcdef"), 3, 10)
    assert ids.dtype == np.int64
    assert len(ids) == 4
    assert ids.min() >= 0
    assert ids.max() < 1 << 10


def test_ids_are_stable_values() -> None:
    """No salted hashing: the same text gives the same ids in every process."""
    first = text_ngram_ids("hello world", (3, 5), 22)
    again = text_ngram_ids("hello world", (3, 5), 22)
    assert np.array_equal(first, again)
    assert len(first) == 9 + 7


def test_case_is_folded_and_sizes_give_different_ids() -> None:
    assert np.array_equal(text_ngram_ids("ABC", (3,), 20), text_ngram_ids("abc", (3,), 20))
    assert text_ngram_ids("abc", (3,), 20)[0] != text_ngram_ids("abc", (2,), 20)[0]


def test_short_text_has_no_ngrams() -> None:
    assert len(ngram_ids(codepoints("ab"), 3, 16)) == 0
    assert len(text_ngram_ids("", (3, 5), 16)) == 0


def test_substring_ids_are_a_subset() -> None:
    text = "The previous answer was wrong. Question: Ωmega Straße, café? Answer:"
    part = text[14:50]
    whole = set(text_ngram_ids(text, (3, 5), 22).tolist())
    assert set(text_ngram_ids(part, (3, 5), 22).tolist()) <= whole


def test_bag_counts_repeats() -> None:
    unique, counts = bag(np.array([5, 3, 5, 5, 9], dtype=np.int64))
    assert unique.tolist() == [3, 5, 9]
    assert counts.tolist() == [1, 3, 1]
    empty_unique, empty_counts = bag(np.zeros(0, dtype=np.int64))
    assert len(empty_unique) == len(empty_counts) == 0


def test_bits_are_checked() -> None:
    with pytest.raises(ValueError, match="bits"):
        ngram_ids(codepoints("abcd"), 3, 64)
