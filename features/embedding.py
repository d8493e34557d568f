"""Text embeddings for historical look-ups and category similarity, behind ``Embedder``.

``HashingEmbedder`` is the default: signed feature hashing of word unigrams, word bigrams and
character trigrams into a fixed number of dimensions, L2-normalised. It runs offline on the
CPU in microseconds, needs no model file, and is deterministic across processes (it hashes
with BLAKE2, not Python's salted ``hash``). ``features.sentence_model`` runs a sentence model
(all-MiniLM-L6-v2, ONNX) through the same protocol, and ``features.embedders`` picks one by
name; an OpenAI-compatible ``/v1/embeddings`` endpoint would plug in the same way.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
import threading
from collections.abc import Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt

from features.words import words_in

EMBEDDING_DIM = 384
"""Dimension of the stored query embeddings (the store's ``vector(384)`` column)."""

Vector = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Maps texts to unit vectors of ``dim`` dimensions."""

    @property
    def dim(self) -> int: ...

    def embed(self, text: str) -> Vector: ...


_blake2b = hashlib.blake2b
"""Each token's 8-byte BLAKE2b digest, little-endian, gives its slot (the value modulo the
dimension) and its sign (the top bit: set is +1)."""

_digest8 = functools.partial(hashlib.blake2b, digest_size=8)
_digest = operator.methodcaller("digest")


def _hash_values(tokens: list[bytes]) -> npt.NDArray[np.uint64]:
    """Each token's 8-byte BLAKE2b digest read as a little-endian unsigned integer, as
    ``int.from_bytes(digest, "little")`` reads it; the hashing loop runs in C (``map`` over
    ``partial`` and ``methodcaller``), the reading in numpy."""
    return np.frombuffer(b"".join(map(_digest, map(_digest8, tokens))), dtype="<u8")


class HashingEmbedder:
    """Signed hashing of words, word pairs and character trigrams.

    A word's own part of the vector (the word and its trigrams) is hashed once and kept in
    one flat slot table (each word a run of slot indices and signed weights), a word pair's
    slot in a dictionary; a text then costs a dictionary look-up per distinct word and per
    word pair, both run by ``map`` in C, and one gather from the slot table in numpy. The
    result is bit for bit the same as hashing every token of the text one by one: the same
    weights reach ``numpy.bincount`` in the same order.
    """

    def __init__(
        self, dim: int = EMBEDDING_DIM, *, max_chars: int = 1600, cache_size: int = 200_000
    ) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._max_chars = max_chars
        self._cache_size = cache_size
        self._words: dict[str, int] = {}
        """Cached word -> its row in ``_starts`` / ``_lengths``."""
        self._starts: npt.NDArray[np.intp] = np.zeros(1024, dtype=np.intp)
        self._lengths: npt.NDArray[np.intp] = np.zeros(1024, dtype=np.intp)
        self._slots: npt.NDArray[np.intp] = np.zeros(16_384, dtype=np.intp)
        self._weights: npt.NDArray[np.float64] = np.zeros(16_384, dtype=np.float64)
        self._used = 0
        self._pairs: dict[tuple[str, str], int] = {}
        """Cached word pair -> its slot, plus ``dim`` when its sign is negative."""
        self._trigrams: dict[str, int] = {}
        """Cached character trigram -> its slot, plus ``dim`` when its sign is negative."""
        self._growing = threading.Lock()
        """Held while words are added to the slot table (readers need no lock: a word's row
        is published only once its slots are written)."""

    @property
    def dim(self) -> int:
        return self._dim

    def _word_slots(self, word: str) -> tuple[list[int], list[float]]:
        """The slot indices and signed weights of a word and its character trigrams. A
        trigram's code (as a word pair's: its slot, plus ``dim`` when its sign is negative) is
        cached: a new word is mostly trigrams seen in other words."""
        dim = self._dim
        value = int.from_bytes(_blake2b(f"w:{word}".encode(), digest_size=8).digest(), "little")
        slots = [value % dim]
        weights = [1.0 if value >> 63 else -1.0]  # the word weighs 1.0, each trigram 0.3
        trigrams = self._trigrams
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            gram = padded[i : i + 3]
            code = trigrams.get(gram)
            if code is None:
                hashed = _blake2b(f"c:{gram}".encode(), digest_size=8).digest()
                value = int.from_bytes(hashed, "little")
                code = value % dim + (0 if value >> 63 else dim)
                if len(trigrams) < self._cache_size:
                    trigrams[gram] = code
            if code < dim:
                slots.append(code)
                weights.append(0.3)
            else:
                slots.append(code - dim)
                weights.append(-0.3)
        return slots, weights

    def _cache_words(self, words: list[str]) -> None:
        """Add ``words`` (none cached yet) to the slot table in one write, as many as the
        cache has room for."""
        with self._growing:
            self._add_words([word for word in words if word not in self._words])

    def _add_words(self, words: list[str]) -> None:
        words = words[: max(0, self._cache_size - len(self._words))]
        if not words:
            return
        indices: list[int] = []
        weights: list[float] = []
        lengths: list[int] = []
        for word in words:
            more, signed = self._word_slots(word)
            indices += more
            weights += signed
            lengths.append(len(more))
        first, rows = len(self._words), len(self._words) + len(words)
        start, end = self._used, self._used + len(indices)
        if rows > len(self._starts):
            size = max(rows, 2 * len(self._starts))
            self._starts = np.resize(self._starts, size)
            self._lengths = np.resize(self._lengths, size)
        if end > len(self._slots):
            size = max(end, 2 * len(self._slots))
            self._slots = np.resize(self._slots, size)
            self._weights = np.resize(self._weights, size)
        self._slots[start:end] = indices
        self._weights[start:end] = weights
        runs = np.array(lengths, dtype=np.intp)
        self._lengths[first:rows] = runs
        self._starts[first:rows] = start + np.cumsum(runs) - runs
        self._used = end
        self._words.update(zip(words, range(first, rows), strict=True))

    def _pair_codes(self, pairs: list[tuple[str, str]]) -> list[int]:
        """The slot of each word pair, plus ``dim`` when its sign is negative; cached."""
        dim = self._dim
        values = _hash_values([f"b:{a} {b}".encode() for a, b in pairs])
        negative = (values >> np.uint64(63)) == 0
        codes: list[int] = ((values % np.uint64(dim)).astype(np.intp) + negative * dim).tolist()
        room = max(0, self._cache_size - len(self._pairs))
        self._pairs.update(itertools.islice(zip(pairs, codes, strict=True), room))
        return codes

    def _word_part(
        self, counts: Mapping[str, int]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The slots and weights of the distinct words (first occurrence first), each word's
        weights times its count."""
        rows = list(map(self._words.get, counts))
        if None in rows:
            self._cache_words([word for word, row in zip(counts, rows, strict=True) if row is None])
            rows = list(map(self._words.get, counts))
        if None in rows:  # the cache is full: hash what it could not keep, in place
            indices: list[int] = []
            weights: list[float] = []
            for row, (word, count) in zip(rows, counts.items(), strict=True):
                if row is None:
                    more, signed = self._word_slots(word)
                else:
                    start, length = int(self._starts[row]), int(self._lengths[row])
                    more = self._slots[start : start + length].tolist()
                    signed = self._weights[start : start + length].tolist()
                indices += more
                weights += [w * count for w in signed]
            return np.array(indices, dtype=np.intp), np.array(weights, dtype=np.float64)
        table = np.array(rows, dtype=np.intp)
        lengths = self._lengths[table]
        ends = np.cumsum(lengths)
        positions = np.arange(int(ends[-1]), dtype=np.intp) + np.repeat(
            self._starts[table] - ends + lengths, lengths
        )
        times = np.fromiter(counts.values(), dtype=np.float64, count=len(rows))
        repeats = np.repeat(times, lengths)
        return self._slots[positions], self._weights[positions] * repeats

    def embed(self, text: str) -> Vector:
        """A unit vector (all zeros for text without word characters)."""
        if len(text) > self._max_chars:  # long prompts: their opening and their ending
            half = self._max_chars // 2
            text = f"{text[:half]} {text[-half:]}"
        split = words_in(text)
        words = split.sequence
        if not words:
            return np.zeros(self._dim, dtype=np.float32)
        word_indices, word_weights = self._word_part(split.counts)
        pairs = list(itertools.pairwise(words))
        codes = list(map(self._pairs.get, pairs))
        if None in codes:
            missing = [pair for pair, code in zip(pairs, codes, strict=True) if code is None]
            found = iter(self._pair_codes(missing))
            codes = [next(found) if code is None else code for code in codes]
        pair_codes = np.array(codes, dtype=np.intp)
        negative = pair_codes >= self._dim
        indices = np.concatenate([word_indices, pair_codes - negative * self._dim])
        weights = np.concatenate([word_weights, np.where(negative, -0.7, 0.7)])
        vector = np.bincount(indices, weights=weights, minlength=self._dim).astype(np.float32)
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector /= norm
        return vector


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else 0.0
