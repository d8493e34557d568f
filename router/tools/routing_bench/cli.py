"""``signalroute bench``: arguments, the embedded Postgres it runs on, progress and output.

The learned runs need Postgres with pgvector; the command starts its own embedded server in
a temporary folder (one database per worker, emptied before every run) and removes it at the
end, so it never touches a service's database.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from features.embedders import EMBEDDER_NAMES
from features.errors import ConfigError
from learner.anchor import LEARNING_RULES
from router.tools.routing_bench.cpu import own_cpu_seconds, server_cpu_seconds
from router.tools.routing_bench.datasets import DATASETS, DEFAULT_DATA_ROOT, load_dataset
from router.tools.routing_bench.learned import VARIANTS
from router.tools.routing_bench.matrix import RoutingMatrix, holdout, restrict, sample
from router.tools.routing_bench.run import (
    TARGET_CHOICES,
    BenchOptions,
    plan_bench,
    requests_per_run,
    run_bench,
)
from router.tools.routing_bench.tables import load_matrix
from store.embedded import PG_SUBDIR, EmbeddedPostgres


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variants {unknown}: use {', '.join(VARIANTS)}")
    return names


def _models(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated model names")
    return names


def add_bench_command(commands: Any) -> None:
    """Register ``bench`` on the CLI's sub-command parsers."""
    bench = commands.add_parser(
        "bench",
        help="measure cost and quality of learned routing against baselines on recorded data",
        description="Learned routing (the real router: features, VW, kNN history, validators; "
        "providers replaced by a routing matrix, the judge by recorded labels) against "
        "oracle, single-model, random, task-level, kNN and cascade baselines.",
    )
    source = bench.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=DATASETS, help="a shared dataset, via its adapter")
    source.add_argument(
        "--matrix", type=Path, help="a routing matrix: long table in .parquet, .csv or .jsonl"
    )
    bench.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help=f"folder holding the shared datasets (default {DEFAULT_DATA_ROOT})",
    )
    bench.add_argument("--out", type=Path, default=Path("bench-out"), help="report folder")
    bench.add_argument(
        "--seeds", type=_ints, default=BenchOptions().seeds, help="e.g. 0,1,2 (default 0-4)"
    )
    bench.add_argument(
        "--lambdas",
        type=_floats,
        help="lambda_cost values the judged variants (every one but pre) are run at "
        "(default: chosen on train, fractions of the escalation break-even)",
    )
    bench.add_argument(
        "--pre-lambdas",
        type=_floats,
        help="lambda_cost values the pre variant is run at (default: chosen on train, one per "
        "vertex of the single models' cost-quality hull, up to three)",
    )
    bench.add_argument(
        "--models",
        type=_models,
        help="route among these models only (comma-separated): a sub-matrix of the input",
    )
    bench.add_argument(
        "--variants",
        type=_names,
        default=BenchOptions().variants,
        help=f"learned variants, from {', '.join(VARIANTS)}",
    )
    bench.add_argument("--judge-accuracy", type=float, default=0.9)
    bench.add_argument(
        "--task-hint",
        action="store_true",
        help="tell the learned variants each prompt's task, as the request hint task=... "
        "(the task-level baseline is always told it)",
    )
    bench.add_argument(
        "--no-anchor",
        action="store_true",
        help="let the escalation policy decide alone from its first request, not anchored "
        "to the rule (accept what passed, escalate what failed) it generalizes",
    )
    bench.add_argument(
        "--pre-credit",
        choices=("answer", "request"),
        default="answer",
        help="reward the pre-generation decision for its own answer (default) or for the "
        "whole request it led to (judge and escalations included)",
    )
    bench.add_argument(
        "--pre-rule",
        choices=LEARNING_RULES,
        default=BenchOptions().pre_rule,
        help="while learning, the pre-generation rule's arm: the best upper bound (default: "
        "every arm tried) or the best mean among arms with enough rewards "
        "(SIGNALROUTE_PRE_RULE)",
    )
    bench.add_argument(
        "--embedder",
        choices=EMBEDDER_NAMES,
        default="hashing",
        help="query embedder for the router's history and the kNN baseline (default "
        "hashing; minilm needs the 'semantic' extra)",
    )
    bench.add_argument(
        "--history",
        choices=("index", "store"),
        default="index",
        help="where the router's historical look-up is answered: the in-process index of "
        "recent embeddings (default, as the service) or pgvector on every request (the "
        "neighbours' ages then come from the store's clock: not reproducible to the request)",
    )
    bench.add_argument(
        "--judge-model",
        help="model the judge is billed as (--matrix only; default: the cheapest model of "
        "at least median quality other than the best single model)",
    )
    bench.add_argument(
        "--judge",
        choices=("always", "on_doubt", "learned"),
        default="always",
        help="when the judge grades an answer (default always: every request a learning "
        "signal; learned: the judge gate decides, starting from always)",
    )
    bench.add_argument(
        "--holdout",
        action="store_true",
        help="never touch the test split: score on a seeded 30%% of train (for choosing settings)",
    )
    bench.add_argument(
        "--sample",
        type=int,
        help="route a seeded random subset of this many prompts",
    )
    bench.add_argument(
        "--escalation-targets",
        type=int,
        default=BenchOptions().escalation_targets,
        help="escalate to the N best models on train (default %(default)s)",
    )
    bench.add_argument(
        "--targets",
        choices=TARGET_CHOICES,
        default=BenchOptions().targets,
        help="escalation targets chosen on train: the cheapest escalation ladder reaching the "
        "best model's quality (default; the front when none does) or the N best models of "
        "the Pareto front (--escalation-targets)",
    )
    bench.add_argument(
        "--order",
        choices=("shuffled", "file"),
        default="shuffled",
        help="stream order: a seeded shuffle (default) or the file's",
    )
    bench.add_argument(
        "--test-fraction",
        type=float,
        default=0.3,
        help="--matrix without a split column: share of prompts tested",
    )
    bench.add_argument("--split-seed", type=int, default=0, help="seed of that split")
    bench.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    bench.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    bench.set_defaults(handler=run_command)


def load_input(args: argparse.Namespace) -> RoutingMatrix:
    """The matrix to benchmark: loaded, then sampled and held out as asked."""
    matrix = _load(args)
    if args.models is not None:
        matrix = restrict(matrix, args.models)
    if args.sample is not None:
        matrix = sample(matrix, args.sample, seed=args.split_seed)
    if args.holdout:
        matrix = holdout(matrix, seed=args.split_seed)
    return matrix


def _load(args: argparse.Namespace) -> RoutingMatrix:
    if args.matrix is not None:
        return load_matrix(
            args.matrix,
            test_fraction=args.test_fraction,
            split_seed=args.split_seed,
            judge_model=args.judge_model,
        )
    if args.judge_model is not None:
        raise ConfigError("--judge-model applies to --matrix only (datasets fix their judge)")
    return load_dataset(args.dataset, args.data_root, split_seed=args.split_seed)


def run_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from router.tools.routing_bench.markdown import markdown
    from router.tools.routing_bench.report import build_report, write_report

    started = time.perf_counter()
    if args.workers < 1:
        raise ConfigError("--workers must be >= 1")
    try:
        options = BenchOptions(
            variants=args.variants,
            lambdas=args.lambdas,
            pre_lambdas=args.pre_lambdas,
            seeds=args.seeds,
            judge_accuracy=args.judge_accuracy,
            judge=args.judge,
            escalation_targets=args.escalation_targets,
            targets=args.targets,
            order=args.order,
            task_hint=args.task_hint,
            anchor=not args.no_anchor,
            pre_credit=args.pre_credit,
            pre_rule=args.pre_rule,
            embedder=args.embedder,
            history_index=args.history == "index",
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    matrix = load_input(args)
    plan = plan_bench(matrix, options)
    total = len(plan.specs) * requests_per_run(matrix)
    origin = "chosen on train" if plan.points.chosen_on_train else "given"
    print(
        f"{matrix.name}: {len(matrix.prompts)} prompts x {len(matrix.models)} models; "
        f"{len(plan.specs)} learned runs of {requests_per_run(matrix)} requests "
        f"on {args.workers} worker(s); lambda_cost {origin}: pre "
        f"{', '.join(f'{v:g}' for v in plan.points.pre)}, judged "
        f"{', '.join(f'{v:g}' for v in plan.points.judged) or 'none'}; escalation targets "
        f"{', '.join(plan.settings.escalation_targets)}"
        + "".join(
            f"; at {lam:g}, {steps} step(s): {', '.join(targets)}"
            for (steps, lam), targets in plan.settings.ladders
        )
        + f"; judge billed as {matrix.judge_model}"
        + (
            f"\njudged variants not run: {plan.points.judged_skipped}"
            if plan.points.judged_skipped
            else ""
        )
    )
    data_dir = Path(tempfile.mkdtemp(prefix="signalroute-bench-pg-"))
    server = EmbeddedPostgres()
    try:
        server.start(data_dir)
        urls = [  # throwaway data: commits need not wait for the disk
            server.create_database(f"bench_{i}", durable=False) for i in range(args.workers)
        ]
        with tqdm(total=total, unit="req", desc="routing", smoothing=0.05) as bar:

            def advance(requests: int) -> None:
                bar.update(requests)

            result = run_bench(matrix, options, urls, plan=plan, on_progress=advance)
        postgres_cpu = server_cpu_seconds(data_dir / PG_SUBDIR)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    cpu = {"benchmark": own_cpu_seconds(), "postgres": postgres_cpu}
    wall = time.perf_counter() - started
    report = build_report(result, wall_seconds=wall, cpu_seconds=cpu)
    json_path, md_path = write_report(report, args.out)
    written = [json_path, md_path]
    if matrix.name == "bfcl":
        from router.tools.routing_bench.bfcl import write_tool_checks

        written += write_tool_checks(matrix, args.out)
    if not args.no_plots:
        from router.tools.routing_bench.plots import write_plots

        written += write_plots(result, report, args.out)
    print(markdown(report))
    print("wrote " + ", ".join(str(p) for p in written))
    postgres = "not readable here" if postgres_cpu is None else f"{postgres_cpu:.0f} s"
    print(
        f"took {wall:.0f} s wall; CPU: {cpu['benchmark']:.0f} s in the benchmark's processes "
        f"(plots not counted), {postgres} in Postgres"
    )
    return 0
