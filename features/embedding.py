"""Text embeddings for historical look-ups and category similarity, behind ``Embedder``.

``HashingEmbedder`` is the default: signed feature hashing of word unigrams, word bigrams and
character trigrams into a fixed number of dimensions, L2-normalised. It runs offline on the
CPU in microseconds, needs no model file, and is deterministic across processes (it hashes
with BLAKE2, not Python's salted ``hash``). Another embedder (a local ONNX model, an
OpenAI-compatible ``/v1/embeddings`` endpoint) plugs in through the same protocol.
"""

from __future__ import annotations

import hashlib
import itertools
import re
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
    """Signed hashing of words, word pairs and character trigrams; cached per token."""

    def __init__(self, dim: int = EMBEDDING_DIM, *, max_chars: int = 1600) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._max_chars = max_chars
        self._cache: dict[str, tuple[int, float]] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def _slot(self, token: str) -> tuple[int, float]:
        slot = self._cache.get(token)
        if slot is None:
            slot = _bucket(token, self._dim)
            if len(self._cache) < 500_000:
                self._cache[token] = slot
        return slot

    def embed(self, text: str) -> Vector:
        """A unit vector (all zeros for text without word characters)."""
        if len(text) > self._max_chars:  # long prompts: their opening and their ending
            half = self._max_chars // 2
            text = f"{text[:half]} {text[-half:]}"
        words = _WORD.findall(text.lower())
        tokens: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
        tokens += [(f"b:{a} {b}", 0.7) for a, b in itertools.pairwise(words)]
        for word in words:
            padded = f"<{word}>"
            tokens += [(f"c:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2)]
        indices: list[int] = []
        weights: list[float] = []
        for token, weight in tokens:
            index, sign = self._slot(token)
            indices.append(index)
            weights.append(sign * weight)
        vector = np.bincount(indices, weights=weights, minlength=self._dim).astype(np.float32)
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector /= norm
        return vector


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else 0.0
