"""The hashing embedder's fast path (slot table, C-level look-ups, ASCII word split) gives
bit for bit the vectors of the plain token-by-token computation, on every path: words cached,
words added, a full cache, ASCII and non-ASCII text, long prompts cut to their ends."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from features.embedding import HashingEmbedder

_WORD = re.compile(r"\w+")


def _slot(token: str, dim: int) -> tuple[int, float]:
    value = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


def reference(text: str, dim: int = 384, max_chars: int = 1600) -> npt.NDArray[np.float32]:
    """The embedding computed token by token with Python loops, summed in the order the
    embedder sums (each distinct word and its trigrams times its count, first occurrence
    first, then every word pair in turn), so that the two must agree exactly."""
    if len(text) > max_chars:
        text = f"{text[: max_chars // 2]} {text[-(max_chars // 2) :]}"
    words = _WORD.findall(text.lower())
    if not words:
        return np.zeros(dim, dtype=np.float32)
    indices: list[int] = []
    weights: list[float] = []
    for word, count in Counter(words).items():
        padded = f"<{word}>"
        tokens = [(f"w:{word}", 1.0)]
        tokens += [(f"c:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2)]
        for token, weight in tokens:
            index, sign = _slot(token, dim)
            indices.append(index)
            weights.append(sign * weight * count)
    for a, b in itertools.pairwise(words):
        index, sign = _slot(f"b:{a} {b}", dim)
        indices.append(index)
        weights.append(sign * 0.7)
    vector = np.bincount(np.array(indices), weights=np.array(weights), minlength=dim)
    unit: npt.NDArray[np.float32] = vector.astype(np.float32)
    unit /= np.float32(np.linalg.norm(unit))
    return unit


def corpus(n: int, seed: int = 0) -> list[str]:
    """Seeded texts: English-like, repeated words, punctuation, digits, underscores,
    non-ASCII letters and scripts, empty and long ones."""
    rng = np.random.default_rng(seed)
    vocabulary = (
        "the a of to sort list python def return why explain compute x_1 42 3.14 "
        "naïve café Größe 東京 москва İstanbul K ﬁle e\u0301 データ"
    ).split()
    joiners = [" ", "  ", ", ", ". ", "\n", "-", "?", "!", "(", ") ", "`", "\t"]
    texts = ["", "  ...  ", "x", "The THE the", "Überprüfe die Größe: 東京 is in Japan!"]
    for _ in range(n):
        length = int(rng.integers(1, 600))
        ascii_only = rng.random() < 0.7
        words = [
            w for w in rng.choice(vocabulary, size=length) if not ascii_only or str(w).isascii()
        ]
        texts.append("".join(f"{w}{joiners[int(rng.integers(len(joiners)))]}" for w in words))
    return texts


def test_embedding_equals_the_token_by_token_computation() -> None:
    embedder = HashingEmbedder()
    texts = corpus(300)
    for text in texts + texts:  # words and pairs new, then all cached
        assert np.array_equal(embedder.embed(text), reference(text)), text[:80]


@pytest.mark.parametrize("cache_size", [0, 1, 50])
def test_embedding_is_the_same_when_the_cache_is_full(cache_size: int) -> None:
    embedder = HashingEmbedder(cache_size=cache_size)
    for text in corpus(60, seed=1) * 2:
        assert np.array_equal(embedder.embed(text), reference(text)), text[:80]


def test_slot_table_grows_past_its_first_size() -> None:
    embedder = HashingEmbedder()
    texts = [" ".join(f"w{i}x{j}" for j in range(400)) for i in range(12)]  # 4,800 words
    for text in texts + texts:
        assert np.array_equal(embedder.embed(text), reference(text))


def test_embedding_of_recorded_prompts_is_unchanged() -> None:
    """RouterBench's real prompts (when the data is there), cold then warm."""
    from router.tools.replay_pool.dataset import load_routerbench

    path = Path(os.environ.get("SIGNALROUTE_REPLAY_DATA", "../shared/data/routerbench"))
    if not path.is_dir():
        pytest.skip(f"RouterBench data not found at {path}")
    prompts = [record.prompt for record in load_routerbench(path).records[:400]]
    embedder = HashingEmbedder()
    for prompt in prompts + prompts[:100]:
        assert np.array_equal(embedder.embed(prompt), reference(prompt))


def test_threads_embedding_at_once_get_the_same_vectors() -> None:
    embedder = HashingEmbedder()
    texts = corpus(120, seed=2)
    with ThreadPoolExecutor(max_workers=4) as pool:
        vectors = list(pool.map(embedder.embed, texts * 3))
    for text, vector in zip(texts * 3, vectors, strict=True):
        assert np.array_equal(vector, reference(text))
