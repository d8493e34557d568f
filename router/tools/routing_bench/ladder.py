"""The escalation ladder a benchmark's pool is given, chosen on the train split by its value.

A chain answers with the arm ``pre`` chose, asks the judge, and escalates a rejected answer
up a ladder: the pool's ``escalation_targets`` list its top first (an answer there is
final) and then the rungs climbed before it, the cheapest first. What a rung is worth is not
what its model is worth alone: it answers only the prompts every answer below it failed, so
a model no one would pick on its own (cheaper ones beat it on average) can be the best next
step, right on many of the prompts the cheap first answer got wrong, for a fraction of the
best model's price. The train Pareto front of single models, the ladder this replaces, never
holds such a model.

``ladder_targets`` scores every ladder of up to ``steps`` rungs in expectation on the train
prompts: the first answer's arm, then each rung in turn, each answer accepted with the
judge's accuracy when it is right and with one minus it when it is wrong, the first answer
and every answer but an escalated top's paying the judge (the benchmark's default, ``--judge
always``: an escalated top answer's verdict changes nothing once learning is off). A
ladder is scored from every first arm the router may settle on, by its worst quality and
its worst cost over them. Two ladders serve the two ends of a curve: the cheapest one whose
quality reaches the best single model's with confidence (``CONFIDENCE_Z``: the cost end),
and the cheapest of those topped by the best single model, else the best of those (the
quality end: a cascade to the best model, cheaper rungs first). Pure: matrices in, model
names out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from router.tools.routing_bench.matrix import FloatArray, IndexArray, RoutingMatrix

CONFIDENCE_Z = 1.5
"""A ladder reaches the best single model's quality when its mean quality, less this many
standard errors of its per-prompt difference from the best model's, still does (the z the
rule anchor asks of evidence, ``learner.anchor``): a ladder that matches the best model only
on average falls short of it on half the samples the served point is checked on."""


@dataclass(frozen=True)
class LadderValue:
    """A ladder's expected quality and cost per prompt (USD), and the lower bound of its
    quality (``CONFIDENCE_Z``), each the worst over the first arms it was scored from."""

    rungs: tuple[int, ...]
    """Model columns, climbed in this order; the last is the top."""
    quality: float
    cost_usd: float
    quality_floor: float


def ladder_outcomes(
    quality: FloatArray,
    cost: FloatArray,
    judge_cost: FloatArray,
    sequence: Sequence[int],
    judge_accuracy: float,
) -> tuple[FloatArray, FloatArray]:
    """Per prompt (a row of ``quality`` and ``cost``, one column per model), the expected
    delivered quality and cost of answering with ``sequence[0]`` and escalating a rejected
    answer along the rest (module docstring)."""
    reach = np.ones(quality.shape[0])
    delivered = np.zeros(quality.shape[0])
    spent = np.zeros(quality.shape[0])
    for step, column in enumerate(sequence):
        spent += reach * cost[:, column]
        if step == len(sequence) - 1:
            if step == 0:  # a first answer is judged even when nothing can follow it
                spent += judge_cost
            delivered += reach * quality[:, column]
            break
        spent += reach * judge_cost
        accepted = np.where(quality[:, column] >= 0.5, judge_accuracy, 1.0 - judge_accuracy)
        delivered += reach * accepted * quality[:, column]
        reach = reach * (1.0 - accepted)
    return delivered, spent


def climb(first: int, rungs: Sequence[int]) -> list[int]:
    """The arms a chain answers with, from ``first`` up ``rungs``: an answer of the top is
    final, and a rung that is the first arm itself is not climbed again."""
    if first == rungs[-1]:
        return [first]
    return [first, *(r for r in rungs if r != first)]


def ladder_values(
    matrix: RoutingMatrix,
    rows: IndexArray,
    *,
    firsts: Sequence[int],
    judge_accuracy: float,
    steps: int,
) -> list[LadderValue]:
    """Every ladder of 1 to ``steps`` rungs (distinct models, the rungs below the top in
    increasing mean cost, as the chain climbs them), scored from each of ``firsts`` (a rung
    that is the first arm itself is skipped from that arm); each ladder's worst quality,
    cost and quality floor over them (``climb``; the cost over the first arms other than
    the best model, whose own answers cost it and a verdict whatever the ladder)."""
    if steps < 1:
        raise ValueError(f"a ladder has at least one rung, got steps={steps}")
    if not firsts:
        raise ValueError("a ladder is scored from at least one first arm")
    quality = np.asarray(matrix.quality[rows], dtype=np.float64)
    cost = np.asarray(matrix.cost_usd[rows], dtype=np.float64)
    judge_cost = cost[:, matrix.column(matrix.judge_model)]
    mean_cost = cost.mean(axis=0)
    best_column = matrix.best_on(rows)
    best = quality[:, best_column]
    models = range(len(matrix.models))
    values: list[LadderValue] = []
    for length in range(1, steps + 1):
        for rungs in itertools.permutations(models, length):
            below = rungs[:-1]
            if any(mean_cost[a] >= mean_cost[b] for a, b in itertools.pairwise(below)):
                continue
            scored = [
                ladder_outcomes(quality, cost, judge_cost, climb(first, rungs), judge_accuracy)
                for first in firsts
            ]
            floors = [
                float(d.mean() - CONFIDENCE_Z * (d - best).std(ddof=1) / math.sqrt(len(d)))
                if len(d) > 1
                else float(d.mean())
                for d, _ in scored
            ]
            # The best model's own answers cost it and a verdict whatever the ladder: the
            # ladder's price is what it costs from the other first arms.
            priced = [c for f, (_, c) in zip(firsts, scored, strict=True) if f != best_column]
            values.append(
                LadderValue(
                    rungs=tuple(rungs),
                    quality=min(float(d.mean()) for d, _ in scored),
                    cost_usd=max(float(c.mean()) for c in priced or [c for _, c in scored]),
                    quality_floor=min(floors),
                )
            )
    return values


Aim = Literal["cheapest", "topped"]
AIMS: tuple[Aim, ...] = get_args(Aim)


def ladder_targets(
    matrix: RoutingMatrix,
    rows: IndexArray,
    *,
    firsts: Sequence[int],
    judge_accuracy: float,
    steps: int,
    aim: Aim = "cheapest",
) -> tuple[str, ...] | None:
    """The pool's ``escalation_targets`` for one ladder (module docstring), scored on
    ``rows`` from each of ``firsts``: its top first, then its other rungs, cheapest first.

    ``cheapest``: the cheapest ladder whose quality reaches the best single model's, its
    lower bound included (``CONFIDENCE_Z``; None when none does). ``topped``: of the
    ladders topped by the best single model, the cheapest that reaches its quality so,
    else the one of the highest quality. Never a ladder dearer than the best model alone."""
    if aim not in AIMS:
        raise ValueError(f"aim must be one of {', '.join(AIMS)}, got {aim!r}")
    means = matrix.quality[rows].mean(axis=0)
    best = matrix.best_on(rows)
    values = ladder_values(matrix, rows, firsts=firsts, judge_accuracy=judge_accuracy, steps=steps)
    price = float(matrix.cost_usd[rows, best].mean())
    if any(first != best for first in firsts):  # else the ladder cannot change the price
        values = [v for v in values if v.cost_usd <= price]  # else the best model is cheaper
    if aim == "topped":
        values = [v for v in values if v.rungs[-1] == best]
    reaching = [v for v in values if v.quality_floor >= float(means[best])]
    chosen = min(reaching, key=lambda v: (v.cost_usd, -v.quality, len(v.rungs)), default=None)
    if chosen is None and aim == "topped":
        chosen = max(values, key=lambda v: (v.quality, -v.cost_usd, -len(v.rungs)), default=None)
    if chosen is None:
        return None
    top, below = chosen.rungs[-1], chosen.rungs[:-1]
    return tuple(matrix.models[j] for j in (top, *below))
