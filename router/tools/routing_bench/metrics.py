"""Pure benchmark metrics: the non-decreasing convex hull, AIQ and cumulative regret.

AIQ follows RouterBench (Hu et al., 2024, and its ``evaluation/AIQ.py``): a router traced at
several operating points gives cost-quality points; any two of them can be mixed at random,
so what the router can reach is the upper convex hull of its points, and paying more never
has to lower quality, so the hull is made non-decreasing (flat after its best point). AIQ is
the area under that curve over the cost range ``[0, c_max]``, divided by ``c_max``, where the
curve is 0 below the router's cheapest point and ``c_max`` is the largest cost among all the
routers compared (so AIQ values of one report are comparable, and lie in [0, max quality]).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from router.tools.routing_bench.matrix import FloatArray

Point = tuple[float, float]
"""(cost, quality)."""


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def nondecreasing_hull(points: Iterable[Point]) -> list[Point]:
    """The non-decreasing upper convex hull of (cost, quality) points, by increasing cost.

    It starts at the cheapest point (the best one among equally cheap points) and ends at
    the cheapest point of highest quality; points below or to the right of it are dropped.
    """
    best_at: dict[float, float] = {}
    for cost, quality in points:
        cost, quality = float(cost), float(quality)
        if not (np.isfinite(cost) and np.isfinite(quality)):
            raise ValueError("hull points must be finite")
        best_at[cost] = max(quality, best_at.get(cost, -np.inf))
    ordered = sorted(best_at.items())
    if not ordered:
        return []
    top = max(q for _, q in ordered)
    end = next(i for i, (_, q) in enumerate(ordered) if q == top)
    hull: list[Point] = []
    for point in ordered[: end + 1]:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    return hull


def area_under(hull: Sequence[Point], c_max: float) -> float:
    """Area under a hull from its first point to ``c_max``, flat after its last point."""
    if not hull:
        return 0.0
    if c_max < hull[-1][0]:
        raise ValueError("c_max must be at least the hull's largest cost")
    points = [*hull, (c_max, hull[-1][1])]
    return sum((c1 - c0) * (q0 + q1) / 2 for (c0, q0), (c1, q1) in itertools.pairwise(points))


def aiq(curves: Mapping[str, Sequence[Point]]) -> dict[str, float]:
    """RouterBench's AIQ of every curve (see the module contract), over a common range."""
    hulls = {name: nondecreasing_hull(points) for name, points in curves.items()}
    c_max = max((hull[-1][0] for hull in hulls.values() if hull), default=0.0)
    if c_max <= 0:
        return {name: (hull[-1][1] if hull else 0.0) for name, hull in hulls.items()}
    return {name: area_under(hull, c_max) / c_max for name, hull in hulls.items()}


def cost_term(cost_usd: FloatArray, cost_ref_usd: float) -> FloatArray:
    """The reward's cost term, elementwise: ``cost / (cost + ref)`` (``learner.reward``)."""
    cost = np.maximum(np.asarray(cost_usd, dtype=np.float64), 0.0)
    return np.asarray(cost / (cost + cost_ref_usd), dtype=np.float64)


def utility(
    quality: FloatArray, cost_usd: FloatArray, lambda_cost: float, cost_ref_usd: float
) -> FloatArray:
    """Per-request utility under the benchmark objective: quality - lambda * cost term
    (the reward the router is trained on, before its affine map, without latency)."""
    return np.asarray(quality - lambda_cost * cost_term(cost_usd, cost_ref_usd), dtype=np.float64)


def cumulative_regret(
    quality: FloatArray,
    cost_usd: FloatArray,
    oracle_quality: FloatArray,
    oracle_cost_usd: FloatArray,
    *,
    lambda_cost: float,
    cost_ref_usd: float,
) -> FloatArray:
    """Regret against the oracle accumulated over a stream: the running sum of the oracle's
    utility minus the router's, request by request (same order)."""
    if not quality.shape == cost_usd.shape == oracle_quality.shape == oracle_cost_usd.shape:
        raise ValueError("regret needs one value per request in every array")
    gap = utility(oracle_quality, oracle_cost_usd, lambda_cost, cost_ref_usd) - utility(
        quality, cost_usd, lambda_cost, cost_ref_usd
    )
    return np.asarray(np.cumsum(gap), dtype=np.float64)


def rolling_mean(values: FloatArray, window: int) -> FloatArray:
    """Mean of the last ``window`` values at each position (fewer at the start)."""
    if window < 1:
        raise ValueError("window must be >= 1")
    sums = np.cumsum(np.concatenate(([0.0], values)))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return np.asarray((sums[ends] - sums[starts]) / (ends - starts), dtype=np.float64)


def pct(value: float, reference: float) -> float:
    """``value`` as a percentage of ``reference`` (NaN when the reference is 0)."""
    return 100.0 * value / reference if reference else float("nan")
