"""Map an incoming prompt to the recorded prompt it stands for.

Three tries, in order:

1. ``exact``: the text equals a recorded prompt (both stripped of surrounding whitespace);
2. ``contains``: the longest recorded prompt found verbatim inside the text. The router wraps
   recorded prompts in escalation and re-route prompts ("the previous answer was wrong ...
   <prompt> ..."), and those must replay the wrapped prompt;
3. ``nearest``: the recorded prompt with the highest cosine similarity of TF-IDF weighted,
   hashed character n-gram vectors. n-grams found in more than ``max_df`` of the recorded
   prompts (the few-shot prefixes every ARC or Winogrande prompt shares, template phrases) are
   dropped, so the similarity reflects the part of a prompt that makes it distinct.

Ties go to the earlier record in dataset order (two MBPP prompts are recorded twice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord
from router.tools.replay_pool.ngrams import IdArray, bag, codepoints, ngram_ids

MatchKind = Literal["exact", "contains", "nearest"]


@dataclass(frozen=True, slots=True)
class Match:
    """The recorded prompt an incoming prompt maps to, and how.

    ``similarity`` is 1.0 for ``exact``; for ``contains`` the share of the incoming text (in
    characters) that the recorded prompt covers; for ``nearest`` the cosine similarity in
    [0, 1] (0.0 when the text shares no informative n-gram with any recorded prompt).
    """

    record: ReplayRecord
    kind: MatchKind
    similarity: float


@dataclass(frozen=True, slots=True)
class MatcherConfig:
    """How prompts are turned into vectors.

    ``sizes``: n-gram lengths; ``bits``: width of n-gram ids (document frequencies are counted
    per id); ``dim``: columns of the dense prompt matrix; ``max_df``: largest share of recorded
    prompts an n-gram may occur in and still count.
    """

    sizes: tuple[int, ...] = (3, 5)
    bits: int = 22
    dim: int = 2048
    max_df: float = 0.05

    def __post_init__(self) -> None:
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError("sizes must be positive n-gram lengths")
        if not 8 <= self.bits <= 26:
            raise ValueError("bits must lie in [8, 26]")
        if self.dim < 1:
            raise ValueError("dim must be positive")
        if not 0.0 < self.max_df <= 1.0:
            raise ValueError("max_df must lie in (0, 1]")


class PromptMatcher:
    """Matches prompts against one dataset. Building it takes a fraction of a second and
    about ``4 * dim`` bytes per record plus ``4 * 2**bits`` bytes; matching is read-only and
    safe to share between threads."""

    def __init__(self, dataset: ReplayDataset, config: MatcherConfig | None = None) -> None:
        self._config = config = config or MatcherConfig()
        self._dataset = dataset
        self._records = dataset.records
        self._prompts = [record.prompt.strip() for record in self._records]
        self._exact: dict[str, int] = {}
        for index, prompt in enumerate(self._prompts):
            self._exact.setdefault(prompt, index)
        self._lengths = np.array([len(prompt) for prompt in self._prompts], dtype=np.int64)
        self._anchor_size = max(config.sizes)

        per_record = [self._ids_by_size(prompt) for prompt in self._prompts]
        bags = [bag(np.concatenate(ids)) for ids in per_record]
        df = np.bincount(np.concatenate([unique for unique, _ in bags]), minlength=1 << config.bits)
        count = len(self._records)
        idf = np.log((1.0 + count) / (1.0 + df)) + 1.0
        idf[df > config.max_df * count] = 0.0
        self._idf: npt.NDArray[np.float32] = idf.astype(np.float32)

        self._matrix = np.zeros((count, config.dim), dtype=np.float32)
        for row, (unique, counts) in enumerate(bags):
            self._matrix[row] = self._vector(unique, counts)

        # For each record, its rarest anchor-size n-gram: a text can only contain the record
        # if it has that n-gram too, which rules out almost every record at once.
        self._anchors = np.zeros(count, dtype=np.int64)
        self._has_anchor = np.zeros(count, dtype=bool)
        for row, ids in enumerate(per_record):
            anchor_ids = ids[-1]
            if len(anchor_ids):
                self._anchors[row] = anchor_ids[np.argmin(df[anchor_ids])]
                self._has_anchor[row] = True

    @property
    def config(self) -> MatcherConfig:
        return self._config

    @property
    def dataset(self) -> ReplayDataset:
        return self._dataset

    def _ids_by_size(self, text: str) -> list[IdArray]:
        """n-gram ids per size, in ``config.sizes`` order except the anchor size last."""
        points = codepoints(text)
        sizes = sorted(self._config.sizes, key=lambda n: n == self._anchor_size)
        return [ngram_ids(points, n, self._config.bits) for n in sizes]

    def _vector(self, unique: IdArray, counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The unit TF-IDF vector of a bag of n-gram ids (all zeros when none counts)."""
        weights = (1.0 + np.log(counts)) * self._idf[unique]
        columns = unique % self._config.dim
        vector = np.bincount(columns, weights=weights, minlength=self._config.dim)
        norm = float(np.linalg.norm(vector))
        return (vector / norm if norm > 0.0 else vector).astype(np.float32)

    def match(self, text: str) -> Match:
        """The recorded prompt ``text`` stands for: exact, else contains, else nearest."""
        stripped = text.strip()
        index = self._exact.get(stripped)
        if index is not None:
            return Match(self._records[index], "exact", 1.0)
        ids = self._ids_by_size(stripped)
        return self._contains(stripped, ids[-1]) or self._nearest(np.concatenate(ids))

    def _contains(self, text: str, anchor_ids: IdArray) -> Match | None:
        fits = self._lengths <= len(text)
        fits &= ~self._has_anchor | np.isin(self._anchors, anchor_ids)
        candidates = np.flatnonzero(fits)
        longest_first = candidates[np.argsort(-self._lengths[candidates], kind="stable")]
        for index in longest_first:
            prompt = self._prompts[index]
            if prompt and prompt in text:
                return Match(self._records[index], "contains", len(prompt) / len(text))
        return None

    def _nearest(self, ids: IdArray) -> Match:
        similarities = self._matrix @ self._vector(*bag(ids))
        index = int(np.argmax(similarities))
        similarity = min(1.0, max(0.0, float(similarities[index])))
        return Match(self._records[index], "nearest", 0.0 if math.isnan(similarity) else similarity)
