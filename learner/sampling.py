"""Drawing an arm from a probability mass function with an injected RNG."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalize(pmf: Sequence[float]) -> list[float]:
    """Clip negatives (VW's float noise) and rescale to sum to 1."""
    clipped = [max(0.0, float(p)) for p in pmf]
    total = sum(clipped)
    if total <= 0:
        return [1.0 / len(clipped)] * len(clipped)
    return [p / total for p in clipped]


def sample_index(pmf: Sequence[float], rng: np.random.Generator) -> int:
    """Index drawn with probability ``pmf[i]`` (the pmf must be normalised)."""
    draw = float(rng.random())
    cumulative = 0.0
    for index, probability in enumerate(pmf):
        cumulative += probability
        if draw < cumulative:
            return index
    return max(i for i, p in enumerate(pmf) if p > 0)
