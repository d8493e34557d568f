"""The resources a running router owns: store, HTTP client, providers, policies, router.

``open_runtime`` is the lifespan's one job: open everything in order, hand it over, and close
it in reverse order on shutdown (policies are snapshotted before the store closes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
import numpy as np

from features.categories import CategoryIndex
from features.embedders import create_embedder
from features.errors import ConfigError, SignalrouteError
from learner.anchor import AnchorConfig
from learner.config import PolicyConfig
from router.arm_probes import ArmReachability
from router.budget import BudgetGuard
from router.health import HealthConfig, HealthTracker
from router.history_index import HistoryIndex, one_blas_thread
from router.lifecycle.journal import JournalWriter
from router.lifecycle.judge import Judge, LLMJudge
from router.lifecycle.spool import JournalSpool
from router.lifecycle.stages import (
    COMPONENT,
    ESCALATION,
    IN_GENERATION,
    JUDGE_GATE,
    PRE_GENERATION,
)
from router.metrics import Metrics, mapping_reader
from router.policies import PolicyRegistry
from router.pool import Pool
from router.providers import OpenAICompatProvider, Provider
from router.providers.instrumented import InstrumentedProvider
from router.providers.transport import provider_transport
from router.routing import Router, RouterConfig
from router.settings import Settings
from router.spend import Budgets, SpendTracker
from router.tenancy import Tenancy
from router.tracing import TracedProvider
from store import embeddings as embedding_store
from store.database import Database
from store.embedded import EmbeddedPostgres

log = logging.getLogger("signalroute")


@dataclass(frozen=True)
class Runtime:
    """Everything a request handler needs, opened by the lifespan."""

    settings: Settings
    pool: Pool
    database: Database
    http: httpx.AsyncClient
    providers: Mapping[str, Provider]
    policies: PolicyRegistry
    health: HealthTracker
    router: Router
    spend: SpendTracker
    budget: BudgetGuard
    metrics: Metrics
    writer: JournalWriter | None = None
    reachability: ArmReachability | None = None
    """Which arms' addresses answer (for ``/readyz``); None in runtimes built by hand."""
    history_index: HistoryIndex | None = None
    """The in-process history look-up; None when it is off."""


async def open_database(settings: Settings, stack: AsyncExitStack) -> Database:
    """Connect to ``database_url``, or start the embedded server when none is set."""
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres()
        url = await asyncio.to_thread(embedded.start, settings.data_dir)
        stack.callback(embedded.stop)
        log.info("embedded Postgres started under %s", settings.data_dir.resolve())
    database = await Database.connect(url, max_size=settings.db_pool_size)
    stack.push_async_callback(database.close)
    return database


async def check_embedder(database: Database, settings: Settings) -> None:
    """Claim the store for ``settings.embedder``; ConfigError when another embedder's vectors
    are stored there (the historical signals would compare two models' vectors)."""
    async with database.connection() as conn:
        recorded = await embedding_store.claim_embedder(conn, settings.embedder)
    if recorded != settings.embedder:
        raise ConfigError(
            f"the store's query embeddings were written by the {recorded!r} embedder, and "
            f"SIGNALROUTE_EMBEDDER={settings.embedder} would compare them with another "
            f"model's vectors: set SIGNALROUTE_EMBEDDER={recorded}, or use a new store "
            "(SIGNALROUTE_DATABASE_URL, or SIGNALROUTE_DATA_DIR for the embedded one)"
        )


STAGE_INTERACTIONS = {
    PRE_GENERATION: ("QA", "HA"),
    IN_GENERATION: ("QA", "IA", "HA"),
    ESCALATION: ("QA", "OA"),
    COMPONENT: ("QA", "CA"),
    JUDGE_GATE: ("QA", "GA"),
}
"""Which shared namespace each stage's policy crosses with the action features."""


def policy_configs(settings: Settings) -> dict[str, PolicyConfig]:
    """One policy per lifecycle stage, configured from the settings."""
    return {
        stage: PolicyConfig(
            exploration=settings.exploration,
            epsilon=settings.epsilon,
            gamma_scale=settings.gamma_scale,
            learning_rate=settings.learning_rate,
            interactions=interactions,
            seed=settings.seed or 0,
        )
        for stage, interactions in STAGE_INTERACTIONS.items()
    }


def tenancy(settings: Settings) -> Tenancy:
    """How the policies are split between tenants: isolated with API keys (each tenant
    learns from its own rewards), shared in local mode (``router.tenancy``)."""
    return Tenancy(
        isolated=settings.auth == "keys",
        shared_tenants=frozenset(settings.shared_tenants),
        min_rewards=settings.tenant_min_rewards,
        max_resident_policies=settings.tenant_policies_in_memory,
        max_tenants=settings.tenants_in_memory,
        prior_version=settings.tenant_prior_version,
        snapshots_kept=settings.tenant_snapshots_kept,
    )


@asynccontextmanager
async def open_runtime(
    settings: Settings, pool: Pool, metrics: Metrics | None = None
) -> AsyncIterator[Runtime]:
    """Open the store, the HTTP client, the providers and the policies; close them on exit.

    ``metrics`` (default: a new one) receives every provider call and exports live state.
    """
    async with AsyncExitStack() as stack:
        database = await open_database(settings, stack)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            transport=provider_transport(
                limits,
                coalesce_writes=settings.coalesce_writes,
                network=settings.provider_network,
            ),
        )
        stack.push_async_callback(http.aclose)
        metrics = metrics or Metrics()
        providers: dict[str, Provider] = {
            arm.name: InstrumentedProvider(
                TracedProvider(OpenAICompatProvider(arm, http), arm), metrics
            )
            for arm in pool.arms
        }
        replica = settings.role == "replica"
        policies = PolicyRegistry(
            database,
            policy_configs(settings),
            snapshot_every=settings.snapshot_every,
            owner=not replica,
            tenancy=tenancy(settings),
        )
        await policies.load(relearn=not replica)
        stack.push_async_callback(policies.close)
        if replica:
            follower = asyncio.create_task(follow_snapshots(policies, settings.policy_refresh_s))
            stack.callback(follower.cancel)
            log.info("replica: rewards go to the learner; following its snapshots")
        writer = JournalWriter(
            database,
            JournalSpool(settings.data_dir / "spool"),
            linger_s=settings.journal_linger_ms / 1000.0,
            max_backlog=settings.journal_backlog or None,
            write_timeout_s=settings.journal_write_timeout_s,
        )
        await writer.flush_spool()  # journals spooled while the store was down last time
        flusher = asyncio.create_task(writer.run_flusher())
        stack.push_async_callback(writer.drain)  # before the policies' last snapshot
        stack.callback(flusher.cancel)
        health = HealthTracker(
            pool.names,
            HealthConfig(
                error_window_s=settings.health_window_s,
                cooldown_s=settings.circuit_cooldown_s,
                latency_half_life_s=settings.latency_half_life_s,
            ),
        )
        reachability = ArmReachability(
            pool.arms, http, ttl_s=settings.readiness_ttl_s, timeout_s=settings.connect_timeout_s
        )
        stack.push_async_callback(reachability.close)
        await check_embedder(database, settings)
        embedder = await asyncio.to_thread(create_embedder, settings.embedder)
        judge: Judge | None = (
            LLMJudge(
                InstrumentedProvider(
                    TracedProvider(OpenAICompatProvider(pool.judge, http), pool.judge), metrics
                )
            )
            if pool.judge is not None
            else None
        )
        history_index = await open_history_index(database, settings, stack)
        spend = SpendTracker(
            Budgets(tenant_usd=settings.tenant_budget_usd, session_usd=settings.session_budget_usd)
        )
        watch(metrics, spend, policies, health, pool.names, writer)
        router = Router(
            pool=pool,
            providers=providers,
            database=database,
            policies=policies,
            health=health,
            spend=spend,
            embedder=embedder,
            categories=CategoryIndex.build(embedder),
            rng=np.random.default_rng(settings.seed),
            judge=judge,
            writer=writer,
            history_index=history_index,
            config=RouterConfig(
                knn_k=settings.knn_k,
                max_attempts=settings.max_attempts,
                learn=not replica,
                anchor=AnchorConfig(learning_rule=settings.pre_rule) if settings.anchor else None,
                pre_credit=settings.pre_credit,
                store_read_timeout_s=settings.store_read_timeout_s,
            ),
        )
        yield Runtime(
            settings=settings,
            pool=pool,
            database=database,
            http=http,
            providers=providers,
            policies=policies,
            health=health,
            router=router,
            spend=spend,
            budget=BudgetGuard(spend, database),
            metrics=metrics,
            writer=writer,
            reachability=reachability,
            history_index=history_index,
        )


async def open_history_index(
    database: Database, settings: Settings, stack: AsyncExitStack
) -> HistoryIndex | None:
    """The in-process history index, loaded and refreshing; None when it is off
    (``history_index``). Until it is loaded (the store did not answer at start) the look-ups
    ask the store."""
    if not settings.history_index:
        return None
    stack.callback(one_blas_thread())
    index = HistoryIndex(database, settings.history_index_rows)
    try:
        await index.load()
    except SignalrouteError as exc:  # the refresher loads it once the store answers
        log.warning("history index not loaded, the store answers meanwhile: %s", exc.message)
    refresher = asyncio.create_task(index.run_refresher(settings.history_index_refresh_ms / 1000.0))
    stack.callback(refresher.cancel)
    return index


async def follow_snapshots(policies: PolicyRegistry, every_s: float) -> None:
    """Replicas: adopt the learner's newest snapshots as they appear."""
    while True:
        await asyncio.sleep(every_s)
        try:
            changed = await policies.refresh()
        except SignalrouteError as exc:
            log.warning("could not look for new policy snapshots: %s", exc.message)
            continue
        for name in changed:
            log.info("policy %s: now a newer snapshot", name)


def watch(
    metrics: Metrics,
    spend: SpendTracker,
    policies: PolicyRegistry,
    health: HealthTracker,
    arms: Sequence[str],
    writer: JournalWriter | None = None,
) -> None:
    """Export live state as gauges read at each scrape: spend and budget use per tenant,
    policy updates per stage, open circuits and in-flight calls per arm, and the journal
    writer's backlog."""
    metrics.watch(
        "signalroute_tenant_spend_usd",
        "What each tenant spent (USD), as this process knows it (restored from the store).",
        ("tenant",),
        mapping_reader(spend.tenants),
    )

    def budget_used() -> dict[str, float]:
        if spend.budgets.tenant_usd is None:
            return {}
        return {t: usd / spend.budgets.tenant_usd for t, usd in spend.tenants().items()}

    metrics.watch(
        "signalroute_tenant_budget_used_ratio",
        "Share of its budget each tenant used (when SIGNALROUTE_TENANT_BUDGET_USD is set).",
        ("tenant",),
        mapping_reader(budget_used),
    )
    metrics.watch(
        "signalroute_policy_updates",
        "Rewards each stage's policy learned from (the policy_version of its decisions).",
        ("stage",),
        mapping_reader(lambda: {s: float(policies.get(s).updates) for s in policies.stages}),
    )
    metrics.watch(
        "signalroute_tenants_in_memory",
        "Isolated tenants held in memory (kind=tenants) and their own policies held "
        "(kind=policies): bounded by SIGNALROUTE_TENANTS_IN_MEMORY and "
        "SIGNALROUTE_TENANT_POLICIES_IN_MEMORY.",
        ("kind",),
        mapping_reader(
            lambda: dict(zip(("tenants", "policies"), map(float, policies.resident()), strict=True))
        ),
    )
    metrics.watch(
        "signalroute_arm_circuit_open",
        "1 while an arm's circuit breaker is open (the arm is skipped), else 0.",
        ("arm",),
        mapping_reader(lambda: {a: 0.0 if health.snapshot(a).available else 1.0 for a in arms}),
    )
    if writer is not None:
        metrics.watch(
            "signalroute_journal_writer",
            "The background writer: rows and journals queued unwritten (kind=backlog; new "
            "requests wait past SIGNALROUTE_JOURNAL_BACKLOG) and requests that waited for it "
            "since start (kind=admissions_waited).",
            ("kind",),
            mapping_reader(
                lambda: {
                    "backlog": float(writer.backlog),
                    "admissions_waited": float(writer.admissions_waited),
                }
            ),
        )
    metrics.watch(
        "signalroute_arm_in_flight",
        "Provider calls in flight, per arm.",
        ("arm",),
        mapping_reader(lambda: {a: float(health.snapshot(a).in_flight) for a in arms}),
    )
