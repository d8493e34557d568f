"""Baseline routers, as pure functions of the matrix: each picks, per test prompt, what runs.

* **oracle**: the best model of each prompt, the cheapest among equals (cheapest correct);
* **single**: one model for everything;
* **random**: a model drawn uniformly per prompt (its expectation, exactly);
* **task-level**: per task, the model with the best mean utility on train;
* **kNN**: RouterBench's classic: the k most similar train prompts (cosine of the router's
  own hashing embedding) predict each model's quality and cost;
* **cascade**: a cheap model answers, the judge grades it (same simulated judge as the
  router's), the strong model answers again when the judge says wrong; with
  ``escalation_prompt``, the strong model is sent what the router sends when it escalates
  (the request, the judge's reason and the rejected answer) and billed for it, as the
  router's escalations are.

Utility is ``quality - lambda_cost * cost / (cost + cost_ref)`` per prompt (the router's
objective, ``router.tools.routing_bench.metrics.cost_term``); sweeping ``lambda_cost`` traces the
task-level and kNN curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.embedding import Embedder
from router.lifecycle.assessment import judge_reason
from router.lifecycle.prompts import escalation_messages
from router.tools.routing_bench.matrix import FloatArray, IndexArray, RoutingMatrix
from router.tools.routing_bench.metrics import cost_term
from router.tools.routing_bench.providers import keeps_label, matrix_verdict


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Per evaluated prompt: the quality delivered and everything spent."""

    quality: FloatArray
    cost_usd: FloatArray

    @property
    def mean_quality(self) -> float:
        return float(self.quality.mean())

    @property
    def mean_cost_usd(self) -> float:
        return float(self.cost_usd.mean())


def _pick(score: FloatArray, cost: FloatArray) -> IndexArray:
    """Per row, the column of highest score, the cheapest among ties."""
    best = score.max(axis=1, keepdims=True)
    tied = np.isclose(score, best, rtol=0.0, atol=1e-12)
    return np.asarray(np.argmin(np.where(tied, cost, np.inf), axis=1), dtype=np.intp)


def routed(matrix: RoutingMatrix, rows: IndexArray, columns: IndexArray) -> Outcomes:
    """What running column ``columns[i]`` on row ``rows[i]`` delivers and costs."""
    return Outcomes(
        quality=np.asarray(matrix.quality[rows, columns], dtype=np.float64),
        cost_usd=np.asarray(matrix.cost_usd[rows, columns], dtype=np.float64),
    )


def oracle_columns(matrix: RoutingMatrix, rows: IndexArray) -> IndexArray:
    return _pick(matrix.quality[rows], matrix.cost_usd[rows])


def oracle(matrix: RoutingMatrix, rows: IndexArray) -> Outcomes:
    return routed(matrix, rows, oracle_columns(matrix, rows))


def single(matrix: RoutingMatrix, rows: IndexArray, column: int) -> Outcomes:
    return routed(matrix, rows, np.full(len(rows), column, dtype=np.intp))


def random_router(matrix: RoutingMatrix, rows: IndexArray) -> Outcomes:
    """The expectation of a uniform draw per prompt."""
    return Outcomes(
        quality=np.asarray(matrix.quality[rows].mean(axis=1), dtype=np.float64),
        cost_usd=np.asarray(matrix.cost_usd[rows].mean(axis=1), dtype=np.float64),
    )


def task_router(
    matrix: RoutingMatrix,
    train_rows: IndexArray,
    rows: IndexArray,
    *,
    lambda_cost: float,
    cost_ref_usd: float,
) -> Outcomes:
    """Per task, the model with the best mean utility on train (overall for unseen tasks)."""
    tasks = np.array([p.task for p in matrix.prompts])

    def best(subset: IndexArray) -> int:
        quality = matrix.quality[subset].mean(axis=0, keepdims=True)
        cost = matrix.cost_usd[subset].mean(axis=0, keepdims=True)
        term = cost_term(matrix.cost_usd[subset], cost_ref_usd).mean(axis=0, keepdims=True)
        return int(_pick(quality - lambda_cost * term, cost)[0])

    fallback = best(train_rows)
    chosen = {task: best(train_rows[tasks[train_rows] == task]) for task in set(tasks[train_rows])}
    columns = np.array([chosen.get(tasks[r], fallback) for r in rows], dtype=np.intp)
    return routed(matrix, rows, columns)


def embed_rows(matrix: RoutingMatrix, rows: IndexArray, embedder: Embedder) -> FloatArray:
    """The prompts' unit embeddings, one row each."""
    return np.array([embedder.embed(matrix.prompts[r].text) for r in rows], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Neighbours:
    """For each evaluated prompt, its ``k`` most similar train prompts (rows of the matrix)."""

    rows: IndexArray
    """Shape (evaluated prompts, k)."""

    @classmethod
    def find(
        cls,
        train_rows: IndexArray,
        train_vectors: FloatArray,
        vectors: FloatArray,
        k: int,
    ) -> Neighbours:
        if not 1 <= k <= len(train_rows):
            raise ValueError(f"k must lie in [1, {len(train_rows)}]")
        similarity = vectors @ train_vectors.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        return cls(rows=np.asarray(train_rows[nearest], dtype=np.intp))


def knn_router(
    matrix: RoutingMatrix,
    rows: IndexArray,
    neighbours: Neighbours,
    *,
    lambda_cost: float,
    cost_ref_usd: float,
) -> Outcomes:
    """Each model's quality and cost predicted as its mean over the prompt's neighbours;
    the model of best predicted utility runs."""
    quality = matrix.quality[neighbours.rows].mean(axis=1)
    cost = matrix.cost_usd[neighbours.rows].mean(axis=1)
    term = cost_term(matrix.cost_usd[neighbours.rows], cost_ref_usd).mean(axis=1)
    columns = _pick(quality - lambda_cost * term, cost)
    return routed(matrix, rows, columns)


def cascade(
    matrix: RoutingMatrix,
    rows: IndexArray,
    *,
    cheap: int,
    strong: int,
    judge_accuracy: float,
    seed: int,
    escalation_prompt: bool = False,
) -> Outcomes:
    """Cheap model, judge, strong model when the judge says the cheap answer is wrong.

    The verdict is the router's simulated judge's (``keeps_label``), billed as the judge model
    on that prompt. With ``escalation_prompt`` the strong model gets the router's escalation
    prompt (``escalation_messages``) and its extra input is billed as the router's is."""
    judge = matrix.column(matrix.judge_model)
    quality = np.empty(len(rows))
    cost = np.empty(len(rows))
    for i, row in enumerate(rows):
        row = int(row)
        truth = matrix.quality[row, cheap] >= 0.5
        answer = matrix.response(row, cheap)
        prompt_id = matrix.prompts[row].prompt_id
        verdict = truth if keeps_label(seed, prompt_id, answer, judge_accuracy) else not truth
        spent = matrix.cost_usd[row, cheap] + matrix.cost_usd[row, judge]
        if verdict:
            quality[i], cost[i] = matrix.quality[row, cheap], spent
            continue
        strong_usd = float(matrix.cost_usd[row, strong])
        if escalation_prompt:
            reason = judge_reason(matrix_verdict(matrix, row, right=False))
            request = ({"role": "user", "content": matrix.prompts[row].text},)
            sent = str(escalation_messages(request, answer, [reason])[-1]["content"])
            strong_usd = matrix.billed(row, strong, sent)
        quality[i], cost[i] = matrix.quality[row, strong], spent + strong_usd
    return Outcomes(quality=quality, cost_usd=cost)


def cascade_cheap_model(
    matrix: RoutingMatrix,
    train_rows: IndexArray,
    *,
    strong: int,
    judge_accuracy: float,
    seeds: Sequence[int],
) -> int:
    """The cascade's cheap model, chosen on train: the cheapest cascade that reaches the
    strong model's train quality (median over seeds), else the best-quality cascade."""
    target = float(matrix.quality[train_rows, strong].mean())
    results: list[tuple[int, float, float]] = []
    for column in range(len(matrix.models)):
        if column == strong:
            continue
        runs = [
            cascade(
                matrix,
                train_rows,
                cheap=column,
                strong=strong,
                judge_accuracy=judge_accuracy,
                seed=seed,
            )
            for seed in seeds
        ]
        quality = float(np.median([r.mean_quality for r in runs]))
        cost = float(np.median([r.mean_cost_usd for r in runs]))
        results.append((column, quality, cost))
    reaching = [r for r in results if r[1] >= target]
    if reaching:
        return min(reaching, key=lambda r: (r[2], r[0]))[0]
    return max(results, key=lambda r: (r[1], -r[2]))[0]
