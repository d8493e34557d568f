"""A whole benchmark: the baselines, then every learned run (variant x lambda_cost x seed).

Hyper-parameters are fixed before the test split is looked at: the best single model, the
cost reference, the escalation targets, the cascade's cheap model and every variant's
``lambda_cost`` points are all chosen on the train split (``plan_bench``); the stream
orders are seeded shuffles (the source files group prompts by task, which no real traffic
does).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from features.embedders import EmbedderName, create_embedder
from features.errors import ConfigError
from learner.anchor import DEFAULT_LEARNING_RULE, LearningRule
from router.lifecycle.stages import JudgeMode
from router.routing import PreCredit
from router.tools.routing_bench import baselines
from router.tools.routing_bench.baselines import Neighbours, Outcomes
from router.tools.routing_bench.ladder import Aim, ladder_targets
from router.tools.routing_bench.learned import (
    HOLDOUT_FRACTION,
    VARIANTS,
    LearnedRun,
    LearnedSpec,
    RunSettings,
    check_arm_names,
)
from router.tools.routing_bench.matrix import IndexArray, RoutingMatrix, Split
from router.tools.routing_bench.operating_points import (
    OperatingPoints,
    choose_points,
    cost_terms,
    value_targets,
)
from router.tools.routing_bench.workers import Job, run_inline, run_parallel
from store.database import Database

Order = Literal["shuffled", "file"]
TargetChoice = Literal["ladder", "front"]
TARGET_CHOICES: tuple[TargetChoice, ...] = ("ladder", "front")

BASELINE_LAMBDAS = (
    *(0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8),
    *(1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0),
)
"""The baseline curves are cheap to trace finely, from free cost to the cheapest model."""


PROMPTED_CASCADE = "cascade (escalation prompt)"
"""The chosen cascade, its strong model sent (and billed for) the router's escalation prompt."""


@dataclass(frozen=True)
class BenchOptions:
    """What a benchmark runs. ``lambdas`` (the judged variants' ``lambda_cost`` points) and
    ``pre_lambdas`` (``pre``'s) are chosen on the matrix's train split when left None
    (``router.tools.routing_bench.operating_points``); given, they are used as they are.
    ``targets``: how the pool's escalation targets are chosen on train: ``ladder`` (per
    chain length and judged point, an escalation ladder chosen by its value,
    ``choose_ladders``; the front where none is found) or ``front`` (the
    ``escalation_targets`` best models of the train Pareto front, best first, for every
    variant)."""

    variants: tuple[str, ...] = ("pre", "escalation", "chain", "full")
    lambdas: tuple[float, ...] | None = None
    pre_lambdas: tuple[float, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    judge_accuracy: float = 0.9
    judge: JudgeMode = "always"
    escalation_targets: int = 3
    targets: TargetChoice = "ladder"
    order: Order = "shuffled"
    knn_k: int = 20
    task_hint: bool = False
    anchor: bool = True
    pre_credit: PreCredit = "answer"
    pre_rule: LearningRule = DEFAULT_LEARNING_RULE
    embedder: EmbedderName = "hashing"
    history_index: bool = True
    """The router's historical look-up from the in-process index (the service's default) or,
    False, from pgvector on every request."""
    baseline_lambdas: tuple[float, ...] = BASELINE_LAMBDAS

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"unknown variants {unknown}: use {', '.join(VARIANTS)}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        for variant in self.variants:
            given = self.pre_lambdas if variant == "pre" else self.lambdas
            if given is not None and not given:
                option = "pre_lambdas" if variant == "pre" else "lambdas"
                raise ValueError(f"variant {variant} needs at least one lambda_cost ({option})")
        lambdas = (*(self.lambdas or ()), *(self.pre_lambdas or ()), *self.baseline_lambdas)
        if not all(value >= 0 for value in lambdas):  # NaN fails too
            raise ValueError("lambda_cost must be >= 0")
        if not 0.0 <= self.judge_accuracy <= 1.0:
            raise ValueError("judge_accuracy must lie in [0, 1]")
        if self.escalation_targets < 1:
            raise ValueError("escalation_targets must be >= 1")
        if self.targets not in TARGET_CHOICES:
            raise ValueError(f"targets must be one of {', '.join(TARGET_CHOICES)}")


@dataclass(frozen=True)
class BenchPlan:
    """What a benchmark will run, decided on train before any run starts: the shared
    settings, every variant's operating points, the cascade's cheap model, the specs."""

    settings: RunSettings
    points: OperatingPoints
    cascade_cheap: int
    specs: tuple[LearnedSpec, ...]


@dataclass(frozen=True, eq=False)
class BaselineResult:
    """A baseline at one operating point: its outcomes on the test split (one per seed for
    the seeded ones). ``curve`` groups the points of one router."""

    name: str
    curve: str
    outcomes: tuple[Outcomes, ...]
    lambda_cost: float | None = None

    @property
    def quality(self) -> float:
        return float(np.median([o.mean_quality for o in self.outcomes]))

    @property
    def cost_usd(self) -> float:
        return float(np.median([o.mean_cost_usd for o in self.outcomes]))


@dataclass(frozen=True, eq=False)
class BenchResult:
    matrix: RoutingMatrix
    options: BenchOptions
    settings: RunSettings
    points: OperatingPoints
    best: int
    cascade_cheap: int
    baselines: tuple[BaselineResult, ...]
    learned: tuple[LearnedRun, ...]
    seconds: float
    workers: int
    orders: dict[int, tuple[IndexArray, IndexArray]] = field(default_factory=dict)


def stream(matrix: RoutingMatrix, split: Split, seed: int, order: Order) -> IndexArray:
    """The rows of ``split`` in the order they are routed."""
    rows = matrix.rows(split)
    if order == "file":
        return rows
    return np.asarray(np.random.default_rng([seed, 1 if split == "test" else 0]).permutation(rows))


def run_settings(matrix: RoutingMatrix, options: BenchOptions) -> RunSettings:
    """Shared settings, chosen on train: the cost reference is the best single model's mean
    cost, the escalation targets the best ``escalation_targets`` models of the train Pareto
    front (by value: never a model a cheaper one matches)."""
    best = matrix.best_single("train")
    return RunSettings(
        cost_ref_usd=float(matrix.mean_cost("train")[best]),
        escalation_targets=value_targets(matrix, options.escalation_targets),
        judge_accuracy=options.judge_accuracy,
        judge=options.judge,
        knn_k=options.knn_k,
        task_hint=options.task_hint,
        anchor=options.anchor,
        pre_credit=options.pre_credit,
        pre_rule=options.pre_rule,
        embedder=options.embedder,
        history_index=options.history_index,
    )


def settled_arms(matrix: RoutingMatrix, lambdas: Sequence[float], cost_ref_usd: float) -> set[int]:
    """The single models the pre-generation rule settles on at ``lambdas`` (the best mean
    reward on train: quality less ``lambda_cost`` times the cost term): where a chain's
    first answers come from."""
    train = matrix.rows("train")
    quality = matrix.quality[train].mean(axis=0)
    cost = cost_terms(matrix, train, cost_ref_usd).mean(axis=0)
    return {int(np.argmax(quality - lam * cost)) for lam in lambdas}


def choose_ladders(
    matrix: RoutingMatrix,
    options: BenchOptions,
    points: OperatingPoints,
    settings: RunSettings,
    cheap: int,
) -> tuple[tuple[tuple[int, float], tuple[str, ...]], ...]:
    """The escalation ladder of every judged run, chosen on train (``RunSettings.ladders``):
    for each chain length of the variants that climb a ladder, the quality end's ladder
    (``topped``) at the smallest judged ``lambda_cost`` (when there are two or more) and the
    cost end's (``cheapest``) at the others, each scored from the arms the pre-generation
    rule may settle on and the cascade's cheap model; a run without a ladder (none found, or
    a variant that goes straight to its strongest target) escalates to the front's targets."""
    firsts = sorted(settled_arms(matrix, points.judged, settings.cost_ref_usd) | {cheap})
    lengths = sorted(
        {
            VARIANTS[v].max_escalations
            for v in options.variants
            if VARIANTS[v].escalation
            and VARIANTS[v].escalation_ladder
            and not VARIANTS[v].whole_front
        }
    )
    lambdas = sorted(set(points.judged))
    ladders: list[tuple[tuple[int, float], tuple[str, ...]]] = []
    for steps in lengths:
        for lam in lambdas:
            aim: Aim = "topped" if len(lambdas) > 1 and lam == lambdas[0] else "cheapest"
            ladder = ladder_targets(
                matrix,
                matrix.rows("train"),
                firsts=firsts,
                judge_accuracy=options.judge_accuracy,
                steps=steps,
                aim=aim,
            )
            if ladder is not None:
                ladders.append(((steps, lam), ladder))
    return tuple(ladders)


def plan_bench(matrix: RoutingMatrix, options: BenchOptions) -> BenchPlan:
    """Everything a benchmark decides before it routes, from the train split alone; raises
    ConfigError when a model of the matrix cannot be an arm."""
    check_arm_names(matrix)
    settings = run_settings(matrix, options)
    best = matrix.best_single("train")
    cheap = baselines.cascade_cheap_model(
        matrix,
        matrix.rows("train"),
        strong=best,
        judge_accuracy=options.judge_accuracy,
        seeds=options.seeds,
    )
    chosen = choose_points(
        matrix,
        cheap=cheap,
        best=best,
        judge_accuracy=options.judge_accuracy,
        cost_ref_usd=settings.cost_ref_usd,
        judge=options.judge,
    )
    given = options.lambdas is not None or options.pre_lambdas is not None
    points = OperatingPoints(
        judged=chosen.judged if options.lambdas is None else options.lambdas,
        pre=chosen.pre if options.pre_lambdas is None else options.pre_lambdas,
        chosen_on_train=not given,
        break_even=chosen.break_even,
        judged_skipped=chosen.judged_skipped if options.lambdas is None else None,
    )
    if options.targets == "ladder":
        settings = replace(
            settings, ladders=choose_ladders(matrix, options, points, settings, cheap)
        )
    specs = tuple(
        LearnedSpec(variant, lam, seed)
        for variant in options.variants
        for lam in points.for_variant(variant)
        for seed in options.seeds
    )
    if not specs:
        raise ConfigError(
            f"nothing to run: the variants {', '.join(options.variants)} have no point "
            f"({points.judged_skipped}); add pre to --variants"
        )
    return BenchPlan(settings=settings, points=points, cascade_cheap=cheap, specs=specs)


def run_baselines(
    matrix: RoutingMatrix, options: BenchOptions, settings: RunSettings, cheap: int
) -> tuple[BaselineResult, ...]:
    """Every baseline on the test split; ``cheap`` is the cascade's cheap model (chosen on
    train by ``plan_bench``)."""
    train, test = matrix.rows("train"), matrix.rows("test")
    best = matrix.best_single("train")
    ref = settings.cost_ref_usd
    results = [BaselineResult("oracle", "oracle", (baselines.oracle(matrix, test),))]
    for column, model in enumerate(matrix.models):
        results.append(
            BaselineResult(model, f"single:{model}", (baselines.single(matrix, test, column),))
        )
    results.append(BaselineResult("random", "random", (baselines.random_router(matrix, test),)))
    embedder = create_embedder(settings.embedder)
    neighbours = Neighbours.find(
        train,
        baselines.embed_rows(matrix, train, embedder),
        baselines.embed_rows(matrix, test, embedder),
        min(options.knn_k, len(train)),
    )
    for lam in options.baseline_lambdas:
        task = baselines.task_router(matrix, train, test, lambda_cost=lam, cost_ref_usd=ref)
        knn = baselines.knn_router(matrix, test, neighbours, lambda_cost=lam, cost_ref_usd=ref)
        results.append(BaselineResult("task-level", "task-level", (task,), lam))
        results.append(BaselineResult("kNN", "kNN", (knn,), lam))

    def cascades(column: int, *, escalation_prompt: bool = False) -> tuple[Outcomes, ...]:
        return tuple(
            baselines.cascade(
                matrix,
                test,
                cheap=column,
                strong=best,
                judge_accuracy=options.judge_accuracy,
                seed=seed,
                escalation_prompt=escalation_prompt,
            )
            for seed in options.seeds
        )

    for column, model in enumerate(matrix.models):
        if column == best:
            continue
        name = "cascade" if column == cheap else f"cascade:{model}"
        results.append(BaselineResult(name, "cascade", cascades(column)))
    prompted = cascades(cheap, escalation_prompt=True)
    results.append(BaselineResult(PROMPTED_CASCADE, PROMPTED_CASCADE, prompted))
    return tuple(results)


def run_bench(
    matrix: RoutingMatrix,
    options: BenchOptions,
    database_urls: Sequence[str],
    *,
    plan: BenchPlan | None = None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> BenchResult:
    """Run the baselines and the learned runs, one worker process per database URL (each
    database is emptied before every run: never point it at a service's database).
    ``plan``: ``plan_bench(matrix, options)``, when the caller made it already."""
    if not database_urls:
        raise ValueError("learned runs need at least one database URL")
    started = time.perf_counter()
    plan = plan or plan_bench(matrix, options)
    jobs, orders = _jobs(matrix, options, plan)
    computed: list[tuple[BaselineResult, ...]] = []
    runs = run_parallel(
        matrix,
        plan.settings,
        jobs,
        database_urls,
        on_progress,
        meanwhile=lambda: computed.append(
            run_baselines(matrix, options, plan.settings, plan.cascade_cheap)
        ),
    )
    return _assemble(matrix, options, plan, runs, orders, started, len(database_urls), computed[0])


def _jobs(
    matrix: RoutingMatrix, options: BenchOptions, plan: BenchPlan
) -> tuple[list[Job], dict[int, tuple[IndexArray, IndexArray]]]:
    orders = {
        seed: (
            stream(matrix, "train", seed, options.order),
            stream(matrix, "test", seed, options.order),
        )
        for seed in options.seeds
    }
    specs = sorted(plan.specs, key=lambda s: list(VARIANTS).index(s.variant), reverse=True)
    return [Job(spec, *orders[spec.seed]) for spec in specs], orders


def _assemble(
    matrix: RoutingMatrix,
    options: BenchOptions,
    plan: BenchPlan,
    runs: Sequence[LearnedRun],
    orders: dict[int, tuple[IndexArray, IndexArray]],
    started: float,
    workers: int,
    results: tuple[BaselineResult, ...],
) -> BenchResult:
    order = {(s.variant, s.lambda_cost, s.seed): i for i, s in enumerate(plan.specs)}
    return BenchResult(
        matrix=matrix,
        options=options,
        settings=plan.settings,
        points=plan.points,
        best=matrix.best_single("train"),
        cascade_cheap=plan.cascade_cheap,
        baselines=results,
        learned=tuple(
            sorted(runs, key=lambda r: order[(r.spec.variant, r.spec.lambda_cost, r.spec.seed)])
        ),
        seconds=time.perf_counter() - started,
        workers=workers,
        orders=orders,
    )


async def run_bench_async(
    matrix: RoutingMatrix,
    options: BenchOptions,
    database: Database,
    *,
    on_progress: Callable[[int], None] = lambda _: None,
) -> BenchResult:
    """``run_bench`` in this process and event loop, on ``database`` (emptied per run)."""
    started = time.perf_counter()
    plan = plan_bench(matrix, options)
    jobs, orders = _jobs(matrix, options, plan)
    runs = await run_inline(matrix, plan.settings, jobs, database, on_progress)
    results = run_baselines(matrix, options, plan.settings, plan.cascade_cheap)
    return _assemble(matrix, options, plan, runs, orders, started, 1, results)


def requests_per_run(matrix: RoutingMatrix) -> int:
    """Requests one learned run routes: train once and its held-out end once more (frozen),
    test twice (frozen, then learning)."""
    train = len(matrix.rows("train"))
    return train + int(train * HOLDOUT_FRACTION) + 2 * len(matrix.rows("test"))
