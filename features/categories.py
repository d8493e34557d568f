"""Similarity of a query to task categories, each defined by a few editable exemplars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from features.embedding import Embedder, Vector

DEFAULT_EXEMPLARS: Mapping[str, Sequence[str]] = {
    "code": (
        "Write a python function to reverse a linked list.",
        "Fix the bug in this JavaScript code.",
        "Implement a function that returns the n-th Fibonacci number.",
        "def solve(nums): return sorted(nums) -- write tests for this function",
    ),
    "math": (
        "What is the derivative of x^2 sin(x)?",
        "Solve for x: 3x + 7 = 22.",
        "Compute the probability of rolling two sixes with two dice.",
        "Prove that the square root of 2 is irrational.",
    ),
    "science_qa": (
        "Which of the following best explains why the moon has phases? A) B) C) D)",
        "Which property of a mineral can be determined just by looking at it?",
        "A student wants to test how temperature affects plant growth. Which variable?",
    ),
    "commonsense": (
        "The trophy doesn't fit into the suitcase because _ is too large. A) trophy B) suitcase",
        "Sarah was a better surgeon than Maria so _ always got the harder cases.",
        "He poured water on the fire because _ was spreading. Option 1: fire Option 2: water",
    ),
    "writing": (
        "Write a short story about a lighthouse keeper.",
        "Draft a polite email declining a meeting invitation.",
        "Rewrite this paragraph to be more concise and persuasive.",
    ),
    "extraction": (
        "Extract the names and dates from this text and return them as JSON.",
        "Return a JSON object with fields title, author and year for this citation.",
        "Summarize the following document in three bullet points.",
    ),
    "chat": (
        "Hi, how are you today?",
        "What do you think about the weather lately?",
        "Can you recommend a good book to read this weekend?",
    ),
}


@dataclass(frozen=True)
class CategoryIndex:
    """Per-category unit centroids of the exemplars' embeddings."""

    names: tuple[str, ...]
    centroids: Vector

    @classmethod
    def build(
        cls, embedder: Embedder, exemplars: Mapping[str, Sequence[str]] = DEFAULT_EXEMPLARS
    ) -> CategoryIndex:
        """Embed each category's exemplars and keep their normalised mean."""
        if not exemplars or any(not texts for texts in exemplars.values()):
            raise ValueError("every category needs at least one exemplar")
        names = tuple(sorted(exemplars))
        rows = []
        for name in names:
            mean = np.mean([embedder.embed(text) for text in exemplars[name]], axis=0)
            norm = float(np.linalg.norm(mean))
            rows.append(mean / norm if norm > 0 else mean)
        return cls(names=names, centroids=np.asarray(rows, dtype=np.float32))

    def similarities(self, vector: Vector) -> dict[str, float]:
        """Cosine similarity of a unit vector to every category, in [-1, 1]."""
        scores = self.centroids @ vector
        return {
            name: round(float(score), 4) for name, score in zip(self.names, scores, strict=True)
        }
