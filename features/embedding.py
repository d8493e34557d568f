"""Text embeddings for historical look-ups and category similarity, behind ``Embedder``.

``HashingEmbedder`` is the default: signed feature hashing of word unigrams, word bigrams and
character trigrams into a fixed number of dimensions, L2-normalised. It runs offline on the
CPU in microseconds, needs no model file, and is deterministic across processes (it hashes
with BLAKE2, not Python's salted ``hash``). ``features.sentence_model`` runs a sentence model
(all-MiniLM-L6-v2, ONNX) through the same protocol, and ``features.embedders`` picks one by
name; an OpenAI-compatible ``/v1/embeddings`` endpoint would plug in the same way.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from typing import Protocol

import numpy as np
import numpy.typing as npt

EMBEDDING_DIM = 384
"""Dimension of the stored query embeddings (the store's ``vector(384)`` column)."""

Vector = npt.NDArray[np.float32]

_WORD = re.compile(r"\w+", re.UNICODE)


class Embedder(Protocol):
    """Maps texts to unit vectors of ``dim`` dimensions."""

    @property
    def dim(self) -> int: ...

    def embed(self, text: str) -> Vector: ...


def _bucket(token: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


class HashingEmbedder:
    """Signed hashing of words, word pairs and character trigrams.

    A word's own part of the vector (the word and its trigrams) is hashed once and cached as
    index and weight arrays; a text then costs one look-up per distinct word and one per word
    pair. The result is the same as hashing every token of the text one by one.
    """

    def __init__(
        self, dim: int = EMBEDDING_DIM, *, max_chars: int = 1600, cache_size: int = 200_000
    ) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._max_chars = max_chars
        self._cache_size = cache_size
        self._words: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]] = {}
        self._pairs: dict[str, tuple[int, float]] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def _word(self, word: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The indices and signed weights of a word and its character trigrams."""
        part = self._words.get(word)
        if part is None:
            padded = f"<{word}>"
            tokens = [(f"w:{word}", 1.0)]
            tokens += [(f"c:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2)]
            slots = [(*_bucket(token, self._dim), weight) for token, weight in tokens]
            part = (
                np.array([index for index, _, _ in slots], dtype=np.intp),
                np.array([sign * weight for _, sign, weight in slots], dtype=np.float64),
            )
            if len(self._words) < self._cache_size:
                self._words[word] = part
        return part

    def _pair(self, pair: str) -> tuple[int, float]:
        slot = self._pairs.get(pair)
        if slot is None:
            index, sign = _bucket(f"b:{pair}", self._dim)
            slot = (index, sign * 0.7)
            if len(self._pairs) < self._cache_size:
                self._pairs[pair] = slot
        return slot

    def embed(self, text: str) -> Vector:
        """A unit vector (all zeros for text without word characters)."""
        if len(text) > self._max_chars:  # long prompts: their opening and their ending
            half = self._max_chars // 2
            text = f"{text[:half]} {text[-half:]}"
        words = _WORD.findall(text.lower())
        if not words:
            return np.zeros(self._dim, dtype=np.float32)
        counts = Counter(words)
        parts = [self._word(word) for word in counts]
        repeats = np.repeat(
            np.fromiter(counts.values(), dtype=np.float64, count=len(counts)),
            [len(indices) for indices, _ in parts],
        )
        pairs = [self._pair(f"{a} {b}") for a, b in itertools.pairwise(words)]
        indices = np.concatenate(
            [*(indices for indices, _ in parts), np.array([i for i, _ in pairs], dtype=np.intp)]
        )
        weights = np.concatenate(
            [
                np.concatenate([weights for _, weights in parts]) * repeats,
                np.array([w for _, w in pairs], dtype=np.float64),
            ]
        )
        vector = np.bincount(indices, weights=weights, minlength=self._dim).astype(np.float32)
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector /= norm
        return vector


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else 0.0
