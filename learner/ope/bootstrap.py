"""Bootstrap confidence intervals, paired across candidates.

Each replicate resamples the logged rounds with replacement once, and every candidate's
estimate is computed on that same resample, so differences between candidates are judged
on the same data. Replicates are sums of per-round terms weighted by resample counts
(``counts @ terms``), which keeps 1,000 replicates of 100k rounds near a second.

The reward model is fitted once, not per replicate: the intervals of DM and DR leave out
the reward model's own fitting noise.
"""

from __future__ import annotations

import numpy as np

from learner.ope.log import FloatArray

CHUNK = 64
"""Replicates drawn per matrix product (bounds memory at CHUNK x n floats)."""


def replicate_sums(table: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    """(resamples, m) column sums of ``table`` (n, m) over bootstrap resamples of its rows.

    NaN columns stay NaN.
    """
    n = table.shape[0]
    if n == 0:
        raise ValueError("cannot bootstrap an empty log")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    finite = np.nan_to_num(table, nan=0.0)
    nan_columns = np.isnan(table).any(axis=0)
    out = np.empty((resamples, table.shape[1]))
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(size, n))
        counts = np.zeros((size, n))
        for row in range(size):
            counts[row] = np.bincount(draws[row], minlength=n)
        out[start : start + size] = counts @ finite
    out[:, nan_columns] = np.nan
    return out


def percentile_interval(values: FloatArray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of replicate values (NaN replicates ignored)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))
