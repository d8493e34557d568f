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


def greedy_pmf(pmf: Sequence[float], tolerance: float = 1e-9) -> list[float]:
    """The deterministic policy behind ``pmf``: all mass on its most probable arm, shared
    equally when several tie (within ``tolerance``).

    Every exploration scheme the policies use (epsilon-greedy, SquareCB, softmax) gives the
    arm with the best predicted reward the largest probability, so this is the policy's
    greedy (argmax) choice: what a policy that no longer learns should act on, since
    exploring only pays for itself through what is learned from it.
    """
    if not pmf:
        raise ValueError("an empty pmf has no greedy arm")
    top = max(pmf)
    best = [i for i, p in enumerate(pmf) if p >= top - tolerance]
    share = 1.0 / len(best)
    return [share if i in best else 0.0 for i in range(len(pmf))]
