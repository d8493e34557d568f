"""Where a benchmark runs its learned variants: ``lambda_cost`` points and escalation
targets, chosen from the train split of the matrix at hand.

A fixed grid chosen on one dataset does not carry over to a pool with another price
structure: on a matrix with one strong and one much cheaper model, every point of a grid
tuned for RouterBench's eleven models falls on the cheap model, and the learned curve is a
single point. So the points are read off the train split, in the reward's own units (the
cost term ``cost / (cost + cost_ref)`` of ``learner.reward``, per prompt):

* **pre-generation** (``pre``): the single models' train points form a frontier, the upper
  convex hull of (mean cost term, mean quality). Between two neighbouring vertices the
  hull's slope is the ``lambda_cost`` at which the objective is indifferent between them, so
  the geometric mean of a vertex's two slopes is the point where that vertex is most
  clearly the best single choice (twice the first slope for the cheapest vertex, half the
  last for the dearest). ``pre`` runs at up to four such points, spread over the hull from
  its cheapest vertex to its best one, both ends always among them: where no cheaper mix
  matches the best model (its cheaper models are far weaker, or a judge's price on every
  answer costs more than they save), the router that learns to send every request to the
  best model is a point of its curve, and the operating point served is never dearer than
  that model for want of one.
* **judged variants** (every one but ``pre``): escalating an answer the judge
  rejects to the best model pays while ``lambda_cost`` is below the break-even
  ``E[quality gained | rejected] / E[cost term of the best model | rejected]``, computed on
  train for the cascade's cheap model with the simulated judge's accuracy. The variants run
  at fixed fractions of it (``JUDGED_FRACTIONS``): halfway to where escalating to the best
  model stops paying (the quality end), and at the break-even itself (the cost end), where
  a chain's last step may go to a cheap target instead. Which of the points is served is
  chosen on a held-out part of train (``report``), so the pair spans the cost range rather
  than two nearby points at the quality end.
* **escalation targets**: the train Pareto front (no other model at least as good for at
  most the cost), best first: targets are chosen by value, so a dearer, worse model is never
  one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from router.lifecycle.stages import JudgeMode
from router.tools.routing_bench.matrix import FloatArray, IndexArray, RoutingMatrix
from router.tools.routing_bench.metrics import cost_term

JUDGED_FRACTIONS = (0.5, 1.0)
"""The judged variants' points as fractions of the escalation break-even ``lambda_cost``."""

PRE_POINTS = 4
"""At most this many ``pre`` points (each a run per seed)."""


@dataclass(frozen=True)
class OperatingPoints:
    """The ``lambda_cost`` values each kind of variant runs at, and where they came from."""

    judged: tuple[float, ...]
    pre: tuple[float, ...]
    chosen_on_train: bool
    break_even: float | None = None
    """The escalation break-even ``lambda_cost`` (None when the points were given)."""
    judged_skipped: str | None = None
    """Why the judged variants have no point (``judge_outprices``), when they have none."""

    def __post_init__(self) -> None:
        for value in (*self.judged, *self.pre):
            if not value >= 0 or not math.isfinite(value):  # NaN fails too
                raise ValueError(f"lambda_cost must be finite and >= 0, got {value}")

    def for_variant(self, variant: str) -> tuple[float, ...]:
        """The points ``variant`` runs at (each value once)."""
        return tuple(dict.fromkeys(self.pre if variant == "pre" else self.judged))


def cost_terms(matrix: RoutingMatrix, rows: IndexArray, cost_ref_usd: float) -> FloatArray:
    """Per prompt of ``rows`` and model, the reward's cost term."""
    return cost_term(matrix.cost_usd[rows], cost_ref_usd)


def frontier_hull(quality: FloatArray, cost: FloatArray) -> list[int]:
    """The models on the upper convex hull of (cost, quality), cheapest first, quality
    strictly rising along it (a model no better than a cheaper one is never a vertex)."""
    order = sorted(range(len(quality)), key=lambda j: (cost[j], -quality[j]))
    hull: list[int] = []
    for j in order:
        if hull and quality[j] <= quality[hull[-1]]:
            continue
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (quality[b] - quality[a]) * (cost[j] - cost[a]) - (quality[j] - quality[a]) * (
                cost[b] - cost[a]
            )
            if cross > 0:
                break
            hull.pop()
        hull.append(j)
    return hull


def hull_lambdas(quality: FloatArray, cost: FloatArray, hull: list[int]) -> list[float]:
    """For each hull vertex, the ``lambda_cost`` at which it is most clearly the best single
    model: the geometric mean of the slopes on either side (module docstring)."""
    if len(hull) < 2:
        return [0.0] * len(hull)
    slopes = [
        (quality[b] - quality[a]) / max(cost[b] - cost[a], 1e-12)
        for a, b in itertools.pairwise(hull)
    ]
    points = [2.0 * slopes[0]]
    points += [math.sqrt(left * right) for left, right in itertools.pairwise(slopes)]
    points.append(slopes[-1] / 2.0)
    return points


def pre_points(quality: FloatArray, cost: FloatArray, limit: int = PRE_POINTS) -> tuple[float, ...]:
    """Up to ``limit`` (at least 2) ``pre`` points spread over the hull, its cheapest and its
    best vertex always among them, largest ``lambda_cost`` (cheapest end) first."""
    if limit < 2:
        raise ValueError(f"pre points need a limit of at least 2 (both ends), got {limit}")
    hull = frontier_hull(quality, cost)
    lambdas = hull_lambdas(quality, cost, hull)
    if len(lambdas) > limit:
        picks = np.unique(np.round(np.linspace(0, len(lambdas) - 1, limit)).astype(int))
        lambdas = [lambdas[int(i)] for i in picks]
    return tuple(_round(v) for v in lambdas)


def escalation_break_even(
    matrix: RoutingMatrix,
    rows: IndexArray,
    *,
    cheap: int,
    best: int,
    judge_accuracy: float,
    cost_ref_usd: float,
) -> float:
    """The ``lambda_cost`` below which escalating a rejected answer of ``cheap`` to ``best``
    pays on ``rows``, in expectation under the simulated judge (module docstring)."""
    quality = matrix.quality[rows]
    rejected = np.where(quality[:, cheap] >= 0.5, 1.0 - judge_accuracy, judge_accuracy)
    gained = float(np.sum((quality[:, best] - quality[:, cheap]) * rejected))
    spent = float(np.sum(cost_terms(matrix, rows, cost_ref_usd)[:, best] * rejected))
    return gained / spent if spent > 0 else 0.0


def choose_points(
    matrix: RoutingMatrix,
    *,
    cheap: int,
    best: int,
    judge_accuracy: float,
    cost_ref_usd: float,
    judge: JudgeMode = "always",
) -> OperatingPoints:
    """Every variant's ``lambda_cost`` points, from the train split alone; none for the
    judged variants when the ``judge`` mode judges every answer and the judge costs what a
    judged run could save (``judge_outprices``)."""
    train = matrix.rows("train")
    quality = np.asarray(matrix.quality[train].mean(axis=0), dtype=np.float64)
    cost = np.asarray(cost_terms(matrix, train, cost_ref_usd).mean(axis=0), dtype=np.float64)
    pre = pre_points(quality, cost)
    break_even = escalation_break_even(
        matrix,
        train,
        cheap=cheap,
        best=best,
        judge_accuracy=judge_accuracy,
        cost_ref_usd=cost_ref_usd,
    )
    if break_even <= 0:  # the best model gains nothing on rejected answers: price it anyway
        hull = frontier_hull(quality, cost)
        break_even = hull_lambdas(quality, cost, hull)[-1] * 2.0 if len(hull) > 1 else 0.0
    skipped = judge_outprices(matrix, train, best) if judge == "always" else None
    judged = () if skipped else tuple(_round(break_even * f) for f in JUDGED_FRACTIONS)
    return OperatingPoints(
        judged=judged,
        pre=pre,
        chosen_on_train=True,
        break_even=break_even,
        judged_skipped=skipped,
    )


def judge_outprices(matrix: RoutingMatrix, rows: IndexArray, best: int) -> str | None:
    """Why no judged run can be cheaper than the best single model (column ``best``) on
    ``rows`` (None when one can): the cheapest model's answer and the judge's verdict on it
    already cost, on average, at least the best model's answer. Judging every answer (the
    benchmark's default, ``--judge always``: the verdicts are what escalation acts on and
    the policies learn from), such a run pays more than the best model for answers that
    start from a worse one."""
    cost = np.asarray(matrix.cost_usd[rows].mean(axis=0), dtype=np.float64)
    cheapest = int(np.argmin(cost))
    judge = float(cost[matrix.column(matrix.judge_model)])
    if cost[cheapest] + judge < cost[best]:
        return None
    return (
        f"the cheapest model's answer ({matrix.models[cheapest]}, ${cost[cheapest]:.6f}) and "
        f"the judge's verdict ({matrix.judge_model}, ${judge:.6f}) cost at least the best "
        f"model's answer ({matrix.models[best]}, ${cost[best]:.6f}) on train"
    )


def value_targets(matrix: RoutingMatrix, count: int) -> tuple[str, ...]:
    """The ``count`` best models of the train Pareto front (quality against mean cost), best
    first: a model beaten by one at most as dear is never a target."""
    quality, cost = matrix.mean_quality("train"), matrix.mean_cost("train")
    front = [
        j
        for j in range(len(matrix.models))
        if not any(
            quality[k] >= quality[j]
            and cost[k] <= cost[j]
            and (quality[k] > quality[j] or cost[k] < cost[j])
            for k in range(len(matrix.models))
        )
    ]
    ranked = sorted(front, key=lambda j: (-quality[j], cost[j]))
    return tuple(matrix.models[j] for j in ranked[:count])


def _round(value: float) -> float:
    """Three significant digits: a report's points read as numbers, not noise."""
    return float(f"{value:.3g}") if value > 0 else 0.0
