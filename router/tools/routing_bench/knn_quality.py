"""How good each embedder's nearest neighbours are as routing history: ``signalroute bench-knn``.

For every embedder, the test prompts' ``k`` nearest train prompts (cosine of the embeddings,
exact) predict each model's quality and cost, as the benchmark's kNN baseline does. Measured:

* ``quality_mae``: mean absolute error of the neighbours' mean quality against each model's
  true quality on the prompt (what the router's historical signals try to estimate);
* ``same_task``: the share of neighbours from the prompt's own task;
* the kNN router traced over the baseline ``lambda_cost`` grid: its AIQ (over the cost range
  of the single models and every embedder's curve, so the values compare) and its
  highest-quality point, as shares of the best single model's test quality and cost.

Pure numpy after the embeddings; nothing touches Postgres or VW.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from features.embedders import EMBEDDER_NAMES, EmbedderName, create_embedder
from features.embedding import Embedder
from router.tools.routing_bench import baselines
from router.tools.routing_bench.baselines import Neighbours
from router.tools.routing_bench.datasets import DATASETS, DEFAULT_DATA_ROOT, load_dataset
from router.tools.routing_bench.matrix import FloatArray, IndexArray, RoutingMatrix, sample
from router.tools.routing_bench.metrics import Point, aiq, pct
from router.tools.routing_bench.run import BASELINE_LAMBDAS


@dataclass(frozen=True)
class KnnQuality:
    """One embedder's neighbours on one matrix (see the module contract)."""

    embedder: str
    quality_mae: float
    same_task: float
    aiq: float
    max_quality_pct: float
    max_quality_cost_pct: float
    embed_seconds: float


def _embed(matrix: RoutingMatrix, rows: IndexArray, embedder: Embedder) -> FloatArray:
    return baselines.embed_rows(matrix, rows, embedder)


def compare(
    matrix: RoutingMatrix,
    embedders: Mapping[str, Embedder],
    *,
    k: int = 20,
    lambdas: Sequence[float] = BASELINE_LAMBDAS,
) -> list[KnnQuality]:
    """Each embedder's neighbour quality on ``matrix``'s test split, from its train split."""
    train, test = matrix.rows("train"), matrix.rows("test")
    best = matrix.best_single("train")
    ref = float(matrix.mean_cost("train")[best])
    best_quality = float(matrix.quality[test, best].mean())
    best_cost = float(matrix.cost_usd[test, best].mean())
    tasks = np.array([p.task for p in matrix.prompts])
    curves: dict[str, list[Point]] = {
        f"single:{model}": [
            (float(matrix.cost_usd[test, c].mean()), float(matrix.quality[test, c].mean()))
        ]
        for c, model in enumerate(matrix.models)
    }
    partial: list[tuple[str, float, float, float]] = []
    for name, embedder in embedders.items():
        started = time.perf_counter()
        train_vectors = _embed(matrix, train, embedder)
        test_vectors = _embed(matrix, test, embedder)
        seconds = time.perf_counter() - started
        neighbours = Neighbours.find(train, train_vectors, test_vectors, min(k, len(train)))
        predicted = matrix.quality[neighbours.rows].mean(axis=1)
        mae = float(np.abs(predicted - matrix.quality[test]).mean())
        same = float((tasks[neighbours.rows] == tasks[test][:, np.newaxis]).mean())
        points = []
        for lam in lambdas:
            out = baselines.knn_router(matrix, test, neighbours, lambda_cost=lam, cost_ref_usd=ref)
            points.append((out.mean_cost_usd, out.mean_quality))
        curves[name] = points
        partial.append((name, mae, same, seconds))
    areas = aiq(curves)
    results = []
    for name, mae, same, seconds in partial:
        cost, quality = max(curves[name], key=lambda p: (p[1], -p[0]))
        results.append(
            KnnQuality(
                embedder=name,
                quality_mae=mae,
                same_task=same,
                aiq=areas[name],
                max_quality_pct=pct(quality, best_quality),
                max_quality_cost_pct=pct(cost, best_cost),
                embed_seconds=seconds,
            )
        )
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument(
        "--embedders",
        type=lambda text: tuple(text.split(",")),
        default=EMBEDDER_NAMES,
        help=f"comma-separated, from {', '.join(EMBEDDER_NAMES)} (default: all)",
    )
    parser.add_argument("--sample", type=int, help="a seeded random subset of this many prompts")
    parser.add_argument("--k", type=int, default=20, help="neighbours (default 20)")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")


def run(args: argparse.Namespace) -> int:
    unknown = [name for name in args.embedders if name not in EMBEDDER_NAMES]
    if unknown:
        raise SystemExit(f"unknown embedders {unknown}: use {', '.join(EMBEDDER_NAMES)}")
    names: tuple[EmbedderName, ...] = args.embedders
    matrix = load_dataset(args.dataset, args.data_root)
    if args.sample is not None:
        matrix = sample(matrix, args.sample)
    embedders: dict[str, Embedder] = {name: create_embedder(name) for name in names}
    results = compare(matrix, embedders, k=args.k)
    print(
        f"{matrix.name}: {len(matrix.rows('train'))} train / {len(matrix.rows('test'))} test "
        f"prompts, k={args.k}"
    )
    print("| embedder | quality MAE | same task | kNN AIQ | max quality (cost) | embed s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.embedder} | {r.quality_mae:.4f} | {r.same_task:.3f} | {r.aiq:.4f} | "
            f"{r.max_quality_pct:.1f}% ({r.max_quality_cost_pct:.1f}%) | {r.embed_seconds:.1f} |"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        document = {"dataset": matrix.name, "k": args.k, "results": [asdict(r) for r in results]}
        args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0
