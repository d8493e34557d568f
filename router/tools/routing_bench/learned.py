"""One learned run: the real ``Router`` over the matrix, cold start, train stream, then test.

The router is assembled as ``router.runtime`` assembles it (policy per stage, health and
spend trackers, the embedder ``RunSettings.embedder`` names, category index, pgvector
history), with the matrix in place of the providers and the recorded-label judge in place of
the LLM judge. A run:

1. empties the database and starts every policy cold;
2. routes the train stream in order, learning from every reward (the ``train`` pass); its
   last ``HOLDOUT_FRACTION`` is first routed with learning off (the ``holdout`` pass: where
   the operating point is chosen, as the test split will be scored, but on train) and then
   learned from like the rest;
3. routes the test split with learning off (``RouterConfig(learn=False)``: no policy update,
   no new neighbours): the ``frozen`` pass, the benchmark's main figure;
4. routes the test split again, learning as in production: the ``online`` pass.

Each request's quality is the recorded quality of the answer it delivered (identified among
the recorded answers to its prompt), its cost everything the router spent on it: every run,
cut run, repair, escalation and judge call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from features.categories import CategoryIndex
from features.components import Component
from features.embedders import EmbedderName, create_embedder
from features.embedding import Embedder, Vector
from features.errors import ConfigError
from features.query import Message
from learner.anchor import AnchorConfig, LearningRule
from learner.config import Exploration, PolicyConfig
from learner.reward import RewardWeights
from router.health import HealthTracker
from router.history_index import HistoryIndex, one_blas_thread
from router.lifecycle.journal import Journal, JournalWriter, Outcome, PendingRequest
from router.lifecycle.judge import Judge, JudgeVerdict
from router.lifecycle.stages import (
    ESCALATION,
    EscalationContext,
    JudgeMode,
    JudgeRule,
    StageOptions,
)
from router.policies import PolicyRegistry
from router.pool import ARM_NAME, Arm, Pool
from router.providers import Provider
from router.routing import (
    PreCredit,
    RouteFailed,
    Router,
    RouterConfig,
    RouteRequest,
    RouteResult,
)
from router.runtime import STAGE_INTERACTIONS
from router.settings import Settings
from router.spend import SpendTracker
from router.tools.routing_bench.clock import StreamClock
from router.tools.routing_bench.matrix import FloatArray, IndexArray, RoutingMatrix
from router.tools.routing_bench.operating_points import value_targets
from router.tools.routing_bench.providers import MatrixJudge, MatrixProvider, PromptIndex
from store.database import Database
from store.migrations import reset_data

BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[int], None]

TENANT = "bench"
HOLDOUT_FRACTION = 0.2
"""The share of the train stream, at its end, scored frozen before it is learned from."""
MATRIX_URL = "http://matrix.invalid/v1"
"""Base URL of the bench arms: never called (the providers are matrix look-ups)."""
REQUEST_LINGER_S = 3600.0
"""How long the journal writer holds a request's row for its journal: until the request
ends (a bench request never waits that long), so both go in one transaction."""


@dataclass(frozen=True)
class Variant:
    """A learned configuration: which lifecycle stages run, how long an escalation chain
    may grow (``max_escalations``) and whether it climbs through the cheaper targets first
    (``escalation_ladder``), and whether the judge grades answers per component
    (``judge_components``: a failed answer has only its failed parts re-routed).

    The judge grades answers for the learning signal and, with escalation, for the escalation
    policy's decision; a variant without escalation has no use for it once learning is off,
    so its frozen pass runs without the judge.
    """

    name: str
    in_generation: bool
    escalation: bool
    components: bool
    description: str
    max_escalations: int = 1
    judge_components: bool = False
    gated: bool = False
    """The judge gate decides whether each first answer is judged (``judge: learned``),
    starting from the run's judge mode as its rule."""
    escalation_ladder: bool = True
    escalation_context: EscalationContext = "answer"
    """What an escalated-to arm is sent besides the request (``StageOptions``)."""
    whole_front: bool = False
    """Escalate to every model of the train Pareto front (best first: the ladder's rungs),
    not only the run's ``escalation_targets``."""

    def stages(self, judge: JudgeMode, *, learning: bool) -> StageOptions:
        needed = learning or self.escalation
        rule: JudgeRule = "on_doubt" if judge == "on_doubt" else "always"
        mode: JudgeMode = "learned" if self.gated and judge in ("always", "on_doubt") else judge
        return StageOptions(
            in_generation=self.in_generation,
            escalation=self.escalation,
            components=self.components,
            judge=mode if needed else "never",
            judge_rule=rule,
            max_escalations=self.max_escalations,
            judge_components=self.judge_components,
            escalation_ladder=self.escalation_ladder,
            escalation_context=self.escalation_context,
        )


VARIANTS: Mapping[str, Variant] = {
    "pre": Variant(
        "pre",
        False,
        False,
        False,
        "pre-generation routing only; the judge's verdicts are the learning signal",
    ),
    "escalation": Variant(
        "escalation",
        False,
        True,
        False,
        "pre-generation routing, then the learned escalation policy accepts or escalates",
    ),
    "escalation-gated": Variant(
        "escalation-gated",
        False,
        True,
        False,
        "escalation, the learned judge gate deciding whether each answer is judged "
        "(starting from the run's judge mode and skipping the judge where its evidence says "
        "the verdict is not worth its price)",
        gated=True,
    ),
    "chain": Variant(
        "chain",
        False,
        True,
        False,
        "escalation, twice at most: an escalated answer is judged and may be escalated again; "
        "the first step goes to a cheaper target, the strongest is kept for the second",
        max_escalations=2,
    ),
    "chain-strongest": Variant(
        "chain-strongest",
        False,
        True,
        False,
        "chain without the ladder (what it replaced): each step's rule goes straight to the "
        "target whose escalations earned the most",
        max_escalations=2,
        escalation_ladder=False,
    ),
    "chain-reasons": Variant(
        "chain-reasons",
        False,
        True,
        False,
        "chain, each escalated-to arm sent the request and the reasons the answer was "
        "rejected, without the rejected answer (a shorter prompt at the dearer arm's price)",
        max_escalations=2,
        escalation_context="reasons",
    ),
    "chain-front": Variant(
        "chain-front",
        False,
        True,
        False,
        "chain over every model of the train Pareto front, three steps at most: the cheaper "
        "rungs first (each a fresh chance on the prompts the others miss), the strongest last",
        max_escalations=3,
        whole_front=True,
    ),
    "chain-front-reasons": Variant(
        "chain-front-reasons",
        False,
        True,
        False,
        "chain-front, each escalated-to arm sent the reasons without the rejected answer",
        max_escalations=3,
        whole_front=True,
        escalation_context="reasons",
    ),
    "components": Variant(
        "components",
        False,
        True,
        True,
        "escalation, the judge grading each component of an answer: a failed answer with "
        "some passing parts has only its failed parts re-routed by the component policy",
        judge_components=True,
    ),
    "full": Variant(
        "full",
        True,
        True,
        True,
        "every stage: pre-generation, in-generation cuts and re-routes, per-component "
        "repair, learned escalation",
    ),
}


_SERVICE = {name: field.default for name, field in Settings.model_fields.items()}
"""The service's default settings, read off the ``Settings`` class (no environment read,
nothing built): the benchmark measures the defaults."""


@dataclass(frozen=True)
class RunSettings:
    """What every learned run of a benchmark shares.

    ``cost_ref_usd`` is where the reward's cost term is one half (the best single model's
    mean cost on train); ``judge`` is when the judge grades an answer (``always`` gives every
    request a learning signal; ``on_doubt`` skips answers a validator could check);
    exploration knobs default to the service's defaults. With ``task_hint`` every request
    carries its prompt's task as the hint ``task`` (what a caller who knows its traffic
    would send, and what the task-level baseline is told).
    """

    cost_ref_usd: float
    escalation_targets: tuple[str, ...]
    judge_accuracy: float = 0.9
    judge: JudgeMode = "always"
    knn_k: int = _SERVICE["knn_k"]
    exploration: Exploration = _SERVICE["exploration"]
    epsilon: float = _SERVICE["epsilon"]
    gamma_scale: float = _SERVICE["gamma_scale"]
    learning_rate: float = _SERVICE["learning_rate"]
    chunk_chars: int = 16
    task_hint: bool = False
    anchor: bool = True
    """Anchor the escalation stage to its rule (``learner.anchor``), as the service does."""
    pre_credit: PreCredit = "answer"
    """What the pre-generation decision is rewarded for (``RouterConfig.pre_credit``)."""
    pre_rule: LearningRule = _SERVICE["pre_rule"]
    """How the pre-generation rule picks its arm while learning (``SIGNALROUTE_PRE_RULE``)."""
    embedder: EmbedderName = "hashing"
    """The query embedder (``SIGNALROUTE_EMBEDDER``): history, categories, the kNN baseline."""
    history_index: bool = _SERVICE["history_index"]
    """Answer the historical look-up from the in-process index of the most recent
    ``history_index_rows`` embeddings, as the service does by default; False: ask pgvector on
    every request (``SIGNALROUTE_HISTORY_INDEX``)."""
    history_index_rows: int = _SERVICE["history_index_rows"]
    ladders: tuple[tuple[tuple[int, float], tuple[str, ...]], ...] = ()
    """Per chain length (a variant's ``max_escalations``) and ``lambda_cost``, the escalation
    targets a run escalates to in place of ``escalation_targets``: the ladder chosen on train
    for that many steps and that end of the curve (``router.tools.routing_bench.ladder``)."""

    def __post_init__(self) -> None:
        if self.cost_ref_usd <= 0:
            raise ValueError("cost_ref_usd must be positive")
        if not self.escalation_targets:
            raise ValueError("at least one escalation target is needed")
        if any(not targets for _, targets in self.ladders):
            raise ValueError("a ladder needs at least one escalation target")

    def targets_for(self, steps: int, lambda_cost: float) -> tuple[str, ...]:
        """The escalation targets of a run escalating up to ``steps`` times at
        ``lambda_cost``."""
        return dict(self.ladders).get((steps, lambda_cost), self.escalation_targets)

    def policy_configs(self, seed: int) -> dict[str, PolicyConfig]:
        return {
            stage: PolicyConfig(
                exploration=self.exploration,
                epsilon=self.epsilon,
                gamma_scale=self.gamma_scale,
                learning_rate=self.learning_rate,
                interactions=interactions,
                seed=seed,
            )
            for stage, interactions in STAGE_INTERACTIONS.items()
        }


@dataclass(frozen=True)
class LearnedSpec:
    variant: str
    lambda_cost: float
    seed: int

    @property
    def label(self) -> str:
        return f"{self.variant} lambda={self.lambda_cost:g} seed={self.seed}"


@dataclass(frozen=True, eq=False)
class PassResult:
    """Per request of one pass, in stream order: the matrix row, the column whose answer was
    delivered (-1: the request failed), its quality, everything spent, and what happened."""

    rows: IndexArray
    column: IndexArray
    quality: FloatArray
    cost_usd: FloatArray
    escalated: BoolArray
    cut: BoolArray
    decisions: int
    seconds: float
    judge_calls: int = 0
    """Verdicts the judge gave in the pass (every answer judged, escalated ones too)."""

    @property
    def judge_calls_per_request(self) -> float:
        return self.judge_calls / len(self.rows) if len(self.rows) else 0.0

    @property
    def mean_quality(self) -> float:
        return float(self.quality.mean())

    @property
    def mean_cost_usd(self) -> float:
        return float(self.cost_usd.mean())

    def then(self, later: PassResult) -> PassResult:
        """This pass followed by ``later``, as one pass."""
        return PassResult(
            rows=np.concatenate([self.rows, later.rows]),
            column=np.concatenate([self.column, later.column]),
            quality=np.concatenate([self.quality, later.quality]),
            cost_usd=np.concatenate([self.cost_usd, later.cost_usd]),
            escalated=np.concatenate([self.escalated, later.escalated]),
            cut=np.concatenate([self.cut, later.cut]),
            decisions=self.decisions + later.decisions,
            seconds=self.seconds + later.seconds,
            judge_calls=self.judge_calls + later.judge_calls,
        )


@dataclass(frozen=True, eq=False)
class LearnedRun:
    spec: LearnedSpec
    train: PassResult
    frozen: PassResult
    online: PassResult
    holdout: PassResult
    """The end of the train stream, scored frozen before it was learned from."""

    @property
    def passes(self) -> tuple[PassResult, ...]:
        return (self.train, self.holdout, self.frozen, self.online)

    @property
    def decisions_per_s(self) -> float:
        passes = self.passes
        seconds = sum(p.seconds for p in passes)
        return sum(p.decisions for p in passes) / seconds if seconds > 0 else 0.0


class MemoEmbedder:
    """An embedder that remembers the vectors of texts it embedded (the benchmark routes the
    same prompts in several passes; embeddings are deterministic)."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self._memo: dict[str, Vector] = {}

    @property
    def dim(self) -> int:
        return self._inner.dim

    def embed(self, text: str) -> Vector:
        vector = self._memo.get(text)
        if vector is None:
            vector = self._inner.embed(text)
            self._memo[text] = vector
        return vector


def check_arm_names(matrix: RoutingMatrix) -> None:
    """Raise ConfigError naming every model of the matrix that cannot be an arm's name, before
    any work starts (a worker would otherwise fail mid-run)."""
    bad = [model for model in matrix.models if not ARM_NAME.fullmatch(model)]
    if bad:
        raise ConfigError(
            f"model names that cannot be arm names: {', '.join(map(repr, bad))} (an arm name "
            f"is letters, digits and . _ / : @ -; rename them in the matrix)"
        )


def bench_pool(matrix: RoutingMatrix, escalation_targets: Sequence[str]) -> Pool:
    """One arm per model of the matrix, with its list price; context windows never mask.
    The judge is the model the benchmark judge is billed as (its price is what the judge
    gate weighs; the verdicts come from ``MatrixJudge``)."""

    def arm(model: str) -> Arm:
        return Arm(
            name=model,
            base_url=MATRIX_URL,
            model=model,
            input_usd_per_mtok=matrix.prices[model].input_usd_per_mtok,
            output_usd_per_mtok=matrix.prices[model].output_usd_per_mtok,
            context_window=10_000_000,
        )

    return Pool(
        arms=tuple(arm(model) for model in matrix.models),
        judge=arm(matrix.judge_model),
        escalation_targets=tuple(escalation_targets),
    )


@dataclass
class _Pass:
    rows: list[int] = field(default_factory=list)
    column: list[int] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    cost_usd: list[float] = field(default_factory=list)
    escalated: list[bool] = field(default_factory=list)
    cut: list[bool] = field(default_factory=list)
    decisions: int = 0

    def result(self, seconds: float, judge_calls: int = 0) -> PassResult:
        return PassResult(
            rows=np.asarray(self.rows, dtype=np.intp),
            column=np.asarray(self.column, dtype=np.intp),
            quality=np.asarray(self.quality, dtype=np.float64),
            cost_usd=np.asarray(self.cost_usd, dtype=np.float64),
            escalated=np.asarray(self.escalated, dtype=np.bool_),
            cut=np.asarray(self.cut, dtype=np.bool_),
            decisions=self.decisions,
            seconds=seconds,
            judge_calls=judge_calls,
        )


class CountingJudge:
    """A judge that counts the verdicts it is asked for (what judging cost a pass)."""

    def __init__(self, inner: Judge) -> None:
        self._inner = inner
        self.calls = 0

    async def score(self, messages: Sequence[Message], answer: str) -> JudgeVerdict:
        self.calls += 1
        return await self._inner.score(messages, answer)

    async def score_components(
        self, messages: Sequence[Message], components: Sequence[Component]
    ) -> JudgeVerdict:
        self.calls += 1
        return await self._inner.score_components(messages, components)


class UnreadWriter(JournalWriter):
    """A journal writer that keeps nothing, for the passes routed with learning off: such a
    pass stores no query embedding, so no later look-up can see its rows, and the benchmark
    reads its figures from the results, not from the store. Writing them would cost a
    transaction per request and change no decision."""

    def log_request(self, request: PendingRequest) -> None:
        return

    def submit(self, journal: Journal, outcome: Outcome, embedding: Vector | None = None) -> None:
        assert embedding is None, "a pass with learning off stores no embedding"
        journal.written = True


class LearnedRunner:
    """Runs learned specs on one database (emptied before each run: never a service's)."""

    def __init__(
        self,
        matrix: RoutingMatrix,
        database: Database,
        settings: RunSettings,
        *,
        embedder: Embedder | None = None,
        direct_writes: bool = False,
    ) -> None:
        """``direct_writes``: the router writes every request's rows itself as the request
        ends, the passes with learning off included (what the benchmark did before it
        batched them; the same results, more work: tests compare the two and read the
        logged decisions of every pass). Each run keeps simulated time on its own
        ``StreamClock`` (``router.tools.routing_bench.clock``): a run is the same whatever
        the machine's speed."""
        self._direct_writes = direct_writes
        self._matrix = matrix
        self._database = database
        self._settings = settings
        self._index = PromptIndex(matrix)
        self._embedder = embedder or MemoEmbedder(create_embedder(settings.embedder))
        self._categories = CategoryIndex.build(self._embedder)
        self._providers: dict[str, Provider] = {
            model: MatrixProvider(matrix, model, self._index, chunk_chars=settings.chunk_chars)
            for model in matrix.models
        }
        self._pools: dict[tuple[str, ...], Pool] = {}

    async def run(
        self,
        spec: LearnedSpec,
        train_rows: Sequence[int],
        test_rows: Sequence[int],
        progress: Progress | None = None,
    ) -> LearnedRun:
        """Cold start, learn over ``train_rows`` in order (scoring their last
        ``HOLDOUT_FRACTION`` frozen first), score ``test_rows`` frozen, then again learning
        (see the module contract)."""
        variant = VARIANTS[spec.variant]
        settings = self._settings
        targets = (
            value_targets(self._matrix, len(self._matrix.models))
            if variant.whole_front
            else settings.targets_for(variant.max_escalations, spec.lambda_cost)
        )
        pool = self._pools.get(targets)
        if pool is None:
            pool = self._pools[targets] = bench_pool(self._matrix, targets)
        async with self._database.connection() as conn:
            await reset_data(conn)
        policies = PolicyRegistry(
            self._database, settings.policy_configs(spec.seed), snapshot_every=1 << 30
        )
        await policies.load()
        history: HistoryIndex | None = None
        restore_blas: Callable[[], None] = lambda: None  # noqa: E731
        if settings.history_index:  # a run's requests reach it as they end (no refresher)
            history = HistoryIndex(self._database, settings.history_index_rows)
            await history.load()
            restore_blas = one_blas_thread()  # as the service: a search is one small product
        try:
            clock = StreamClock()
            health = HealthTracker(pool.names, clock=clock.monotonic)
            spend = SpendTracker()
            rng = np.random.default_rng(spec.seed)
            # A request's row goes in with its journal, one transaction, before the next
            # request starts; the passes with learning off are not written (UnreadWriter).
            direct = self._direct_writes
            writer = None if direct else JournalWriter(self._database, linger_s=REQUEST_LINGER_S)
            unread = None if direct else UnreadWriter(self._database)
            judge = CountingJudge(
                MatrixJudge(
                    self._matrix, self._index, accuracy=settings.judge_accuracy, seed=spec.seed
                )
            )

            def router(learn: bool) -> Router:
                return Router(
                    pool=pool,
                    providers=self._providers,
                    database=self._database,
                    policies=policies,
                    health=health,
                    spend=spend,
                    embedder=self._embedder,
                    categories=self._categories,
                    rng=rng,
                    judge=judge,
                    writer=writer if learn else unread,
                    history_index=history,
                    wall_clock=clock.now,
                    config=RouterConfig(
                        knn_k=settings.knn_k,
                        learn=learn,
                        anchor=AnchorConfig(learning_rule=settings.pre_rule)
                        if settings.anchor
                        else None,
                        pre_credit=settings.pre_credit,
                    ),
                )

            weights = RewardWeights(
                lambda_cost=spec.lambda_cost, lambda_latency=0.0, cost_ref_usd=settings.cost_ref_usd
            )
            live = router(learn=True)
            learning = variant.stages(settings.judge, learning=True)
            serving = variant.stages(settings.judge, learning=False)
            held = int(len(train_rows) * HOLDOUT_FRACTION)
            fit, end = train_rows[: len(train_rows) - held], train_rows[len(train_rows) - held :]

            async def route(
                router: Router, rows: Sequence[int], stages: StageOptions
            ) -> PassResult:
                return await self._pass(
                    router, rows, weights, stages, progress, clock, judge, writer
                )

            train = await route(live, fit, learning)
            holdout = await route(router(learn=False), end, serving)
            train = train.then(await route(live, end, learning))
            frozen = await route(router(learn=False), test_rows, serving)
            online = await route(live, test_rows, learning)
        finally:
            restore_blas()
            for stage in policies.stages:
                policies.get(stage).close()
        return LearnedRun(spec=spec, train=train, frozen=frozen, online=online, holdout=holdout)

    async def _pass(
        self,
        router: Router,
        rows: Sequence[int],
        weights: RewardWeights,
        stages: StageOptions,
        progress: Progress | None,
        clock: StreamClock,
        judge: CountingJudge | None = None,
        writer: JournalWriter | None = None,
    ) -> PassResult:
        """Route ``rows`` one after the other. With ``writer`` (the router's journal writer),
        each request's rows are in the store before the next request starts: its neighbour
        look-up sees exactly what it would see had the router written them itself."""
        matrix, collected = self._matrix, _Pass()
        judged_before = judge.calls if judge is not None else 0
        task_hint = self._settings.task_hint
        started = time.perf_counter()
        for count, row in enumerate(rows, start=1):
            clock.tick()
            prompt = matrix.prompts[row]
            request = RouteRequest(
                messages=({"role": "user", "content": prompt.text},),
                weights=weights,
                tenant=TENANT,
                stages=stages,
                hints={"task": prompt.task} if task_hint else {},
                tools=prompt.tools or None,
            )
            final: RouteResult | RouteFailed | None = None
            async for event in router.run(request):
                if isinstance(event, RouteResult | RouteFailed):
                    final = event
            assert final is not None, "Router.run ends with a result or a failure"
            if writer is not None:
                await writer.drain()
            collected.rows.append(row)
            collected.decisions += len(final.decisions)
            collected.cut.append(any(d.outcome.startswith("cut") for d in final.decisions))
            collected.escalated.append(
                any(
                    d.stage == ESCALATION and d.outcome.startswith("escalated")
                    for d in final.decisions
                )
            )
            if isinstance(final, RouteResult):
                column = self._delivered(row, final)
                collected.column.append(-1 if column is None else column)
                collected.quality.append(
                    0.0 if column is None else float(matrix.quality[row, column])
                )
                collected.cost_usd.append(final.cost_usd)
            else:
                collected.column.append(-1)
                collected.quality.append(0.0)
                collected.cost_usd.append(sum(d.cost_usd or 0.0 for d in final.decisions))
            if progress is not None and count % 50 == 0:
                progress(50)
        if progress is not None:
            progress(len(rows) % 50)
        judged = (judge.calls - judged_before) if judge is not None else 0
        return collected.result(time.perf_counter() - started, judged)

    def _delivered(self, row: int, result: RouteResult) -> int | None:
        """The column whose recorded answer was delivered: the answering arm's when the text
        is its recorded answer, else the recorded answer it is identified with (a repaired,
        assembled answer), else None."""
        column = self._matrix.column(result.model)
        if self._matrix.response(row, column) == result.output:
            return column
        return self._index.answered_by(row, result.output)
