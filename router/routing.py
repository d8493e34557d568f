"""Pre-generation routing: signals in, a drawn arm out, the answer and its reward logged.

``Router.run`` is the one orchestration path for streaming and non-streaming requests:

1. log the request (nothing is lost once it is accepted);
2. gather query, historical (pgvector neighbours) and system signals;
3. mask arms that violate the request's constraints or whose circuit is open;
4. draw an arm from the policy's PMF, log the decision with its probability;
5. call the arm; on a provider failure, reward 0, mask it and draw again;
6. check the output, shape the immediate reward, learn from it, log it;
7. store the query embedding so later requests find this one as a neighbour.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from features.categories import CategoryIndex
from features.embedding import Embedder, Vector
from features.errors import (
    NoEligibleArmError,
    ProviderError,
    ProviderRateLimitedError,
    SignalrouteError,
)
from features.historical import HistoricalSignals, NeighbourOutcome, summarize
from features.query import Message, QuerySignals, embed_query, query_signals
from learner.context import Context
from learner.reward import RewardWeights, shape_reward
from learner.sampling import sample_index
from router.checks import check_output
from router.constraints import Constraints, eligible_arms
from router.contexts import build_context
from router.health import HealthTracker
from router.policies import PRE_GENERATION, PolicyRegistry
from router.pool import Pool
from router.providers import ChatRequest, Completion, Delta, Provider
from router.spend import SpendTracker
from store import decisions as decision_log
from store import embeddings as embedding_store
from store import requests as request_log
from store import rewards as reward_log
from store.database import Database

Clock = Callable[[], float]

log = logging.getLogger("signalroute.routing")

IMMEDIATE = "immediate"
"""Reward source of the checks run on every completion."""


@dataclass(frozen=True)
class RouteRequest:
    """A request to route and run."""

    messages: tuple[Message, ...]
    weights: RewardWeights
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    response_format: Mapping[str, Any] | None = None
    constraints: Constraints = field(default_factory=Constraints)
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False


@dataclass(frozen=True)
class DecisionTrace:
    """One decision as the caller sees it: what was drawn, with what probability, and why."""

    decision_id: str
    stage: str
    arm: str
    probability: float
    pmf: Mapping[str, float]
    policy_version: int
    signals: Mapping[str, Any]
    masked: Mapping[str, str]
    outcome: str
    reward: float | None
    cost_usd: float | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class RouteResult:
    """The answer, who gave it, what it cost, and every decision that led to it."""

    request_id: str
    output: str
    model: str
    cost_usd: float
    latency_ms: float
    decisions: tuple[DecisionTrace, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RouteFailed:
    """Every attempt failed; the request is logged as failed."""

    request_id: str
    error: ProviderError
    decisions: tuple[DecisionTrace, ...]


RouteEvent = Delta | RouteResult | RouteFailed


@dataclass(frozen=True)
class RouterConfig:
    knn_k: int = 20
    max_attempts: int = 3


class Router:
    """The pre-generation stage of the request lifecycle, with its logging and learning."""

    def __init__(
        self,
        *,
        pool: Pool,
        providers: Mapping[str, Provider],
        database: Database,
        policies: PolicyRegistry,
        health: HealthTracker,
        spend: SpendTracker,
        embedder: Embedder,
        categories: CategoryIndex,
        rng: np.random.Generator,
        config: RouterConfig = RouterConfig(),
        clock: Clock = time.perf_counter,
    ) -> None:
        self.pool = pool
        self._providers = providers
        self._database = database
        self._policies = policies
        self._health = health
        self._spend = spend
        self._embedder = embedder
        self._categories = categories
        self._rng = rng
        self._config = config
        self._clock = clock

    async def _history(
        self, embedding: Vector, tenant: str, user: str | None
    ) -> tuple[HistoricalSignals, HistoricalSignals]:
        if not embedding.any():
            return HistoricalSignals(), HistoricalSignals()
        now = datetime.now(UTC)
        async with self._database.connection() as conn:
            rows = await embedding_store.neighbour_outcomes(
                conn, embedding, k=self._config.knn_k, tenant=tenant
            )
            user_rows = (
                await embedding_store.neighbour_outcomes(
                    conn, embedding, k=self._config.knn_k, tenant=tenant, user_id=user
                )
                if user is not None
                else []
            )

        def convert(records: list[Any]) -> HistoricalSignals:
            return summarize(
                NeighbourOutcome(
                    request_id=str(r.request_id),
                    distance=r.distance,
                    arm=r.arm,
                    reward=r.reward,
                    age_s=(now - r.created_at).total_seconds(),
                )
                for r in records
            )

        return convert(list(rows)), convert(list(user_rows))

    async def run(self, request: RouteRequest) -> AsyncIterator[RouteEvent]:
        """Route and run ``request``; yields text deltas when streaming, then one result.

        Raises NoEligibleArmError (nothing logged) when no arm satisfies the constraints.
        """
        started = self._clock()
        embedding = embed_query(self._embedder, request.messages)
        query = query_signals(
            request.messages, request.response_format, embedding, self._categories
        )
        health = {name: self._health.snapshot(name) for name in self.pool.names}
        # Validate before logging anything: a request no arm can serve is a 4xx, not a row.
        eligible_arms(
            self.pool.arms, health, request.constraints, query.tokens_est, request.max_tokens
        )
        request_id = str(uuid.uuid4())
        async with self._database.connection() as conn:
            await request_log.insert_request(
                conn,
                request_id=request_id,
                messages=[dict(m) for m in request.messages],
                params=_request_params(request),
                tenant=request.tenant,
                user_id=request.user,
                session_id=request.session,
            )
        finished = False
        try:
            async for event in self._attempts(request, request_id, started, embedding, query):
                finished = not isinstance(event, Delta)
                yield event
        finally:
            if not finished:
                await asyncio.shield(self._abandon(request_id, started))

    async def _abandon(self, request_id: str, started: float) -> None:
        """Mark a request failed when its run ended early (client gone, store error)."""
        try:
            async with self._database.connection() as conn:
                await request_log.fail_request(
                    conn,
                    request_id,
                    error="abandoned: the run ended before an answer was delivered",
                    latency_ms=(self._clock() - started) * 1000.0,
                )
        except SignalrouteError as exc:
            log.warning("request %s: could not mark it failed: %s", request_id, exc.message)

    async def _attempts(
        self,
        request: RouteRequest,
        request_id: str,
        started: float,
        embedding: Vector,
        query: QuerySignals,
    ) -> AsyncIterator[RouteEvent]:
        """Draw, call and learn until an arm answers or the attempts run out."""
        history, user_history = await self._history(embedding, request.tenant, request.user)
        spend = self._spend.spend(request.tenant, request.session)
        chat = ChatRequest(
            messages=request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            response_format=request.response_format,
        )
        traces: list[DecisionTrace] = []
        failed: set[str] = set()
        last_error: ProviderError | None = None
        policy = self._policies.get(PRE_GENERATION)
        for _ in range(self._config.max_attempts):
            health = {name: self._health.snapshot(name) for name in self.pool.names}
            try:
                eligibility = eligible_arms(
                    self.pool.arms,
                    health,
                    request.constraints,
                    query.tokens_est,
                    request.max_tokens,
                    exclude=frozenset(failed),
                )
            except NoEligibleArmError:
                break
            arms = tuple(self.pool.arm(name) for name in eligibility.eligible)
            context = build_context(arms, query, history, user_history, health, spend)
            pmf = policy.pmf(context)
            index = sample_index(pmf, self._rng)
            arm = arms[index].name
            probability = pmf[index]
            decision_id = str(uuid.uuid4())
            async with self._database.connection() as conn:
                await decision_log.insert_decision(
                    conn,
                    decision_id=decision_id,
                    request_id=request_id,
                    stage=PRE_GENERATION,
                    context=context.to_json(),
                    arms=list(context.arm_names),
                    chosen_arm=arm,
                    probability=probability,
                    pmf=dict(zip(context.arm_names, pmf, strict=True)),
                    policy_name=PRE_GENERATION,
                    policy_version=policy.updates,
                )
            trace = DecisionTrace(
                decision_id=decision_id,
                stage=PRE_GENERATION,
                arm=arm,
                probability=probability,
                pmf=dict(zip(context.arm_names, pmf, strict=True)),
                policy_version=policy.updates,
                signals=_signals(context, arm),
                masked=dict(eligibility.masked),
                outcome="pending",
                reward=None,
            )
            self._health.started(arm)
            streamed = False
            try:
                completion: Completion | None = None
                if request.stream:
                    async for event in self._providers[arm].stream(chat):
                        if isinstance(event, Delta):
                            streamed = True
                            yield event
                        else:
                            completion = event
                else:
                    completion = await self._providers[arm].complete(chat)
                assert completion is not None
            except ProviderError as exc:
                retry_after = (
                    exc.retry_after_s if isinstance(exc, ProviderRateLimitedError) else None
                )
                self._health.failed(arm, retry_after_s=retry_after)
                await self._reward(decision_id, context, arm, probability, 0.0, IMMEDIATE)
                traces.append(replace(trace, outcome=f"error: {exc.message}", reward=0.0))
                failed.add(arm)
                last_error = exc
                if streamed:
                    break
                continue
            self._health.succeeded(arm, completion.latency_ms, completion.rate_limit.headroom)
            check = check_output(completion.text, completion.finish_reason, request.response_format)
            reward = shape_reward(
                check.quality, completion.cost_usd, completion.latency_ms, request.weights
            )
            await self._reward(decision_id, context, arm, probability, reward, IMMEDIATE)
            outcome = (
                "ok" if not check.problems else "ok with problems: " + "; ".join(check.problems)
            )
            traces.append(
                replace(
                    trace,
                    outcome=outcome,
                    reward=reward,
                    cost_usd=completion.cost_usd,
                    latency_ms=completion.latency_ms,
                )
            )
            total_cost = sum(t.cost_usd or 0.0 for t in traces)
            latency_ms = (self._clock() - started) * 1000.0
            self._spend.add(request.tenant, request.session, total_cost)
            async with self._database.connection() as conn:
                await request_log.complete_request(
                    conn,
                    request_id,
                    output=completion.text,
                    model=arm,
                    cost_usd=total_cost,
                    latency_ms=latency_ms,
                )
                if embedding.any():
                    await embedding_store.insert_embedding(
                        conn,
                        request_id=request_id,
                        tenant=request.tenant,
                        user_id=request.user,
                        embedding=embedding,
                    )
            yield RouteResult(
                request_id=request_id,
                output=completion.text,
                model=arm,
                cost_usd=total_cost,
                latency_ms=latency_ms,
                decisions=tuple(traces),
            )
            return
        error = last_error or ProviderError("no arm left to try", arm="")
        async with self._database.connection() as conn:
            await request_log.fail_request(
                conn,
                request_id,
                error=error.message,
                model=traces[-1].arm if traces else None,
                latency_ms=(self._clock() - started) * 1000.0,
            )
        yield RouteFailed(request_id=request_id, error=error, decisions=tuple(traces))

    async def _reward(
        self,
        decision_id: str,
        context: Context,
        arm: str,
        probability: float,
        reward: float,
        source: str,
    ) -> None:
        async with self._database.connection() as conn:
            await reward_log.record_reward(
                conn,
                decision_id=decision_id,
                value=reward,
                source=source,
                idempotency_key=f"{decision_id}:{source}",
            )
        await self._policies.learn(PRE_GENERATION, context, arm, probability, reward)


def _request_params(request: RouteRequest) -> dict[str, Any]:
    constraints = request.constraints
    return {
        "response_format": dict(request.response_format) if request.response_format else None,
        "constraints": {
            "max_cost_usd": constraints.max_cost_usd,
            "max_latency_ms": constraints.max_latency_ms,
            "capabilities": sorted(constraints.capabilities),
        },
        "objective": {
            "lambda_cost": request.weights.lambda_cost,
            "lambda_latency": request.weights.lambda_latency,
        },
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": request.stream,
    }


def _signals(context: Context, arm: str) -> dict[str, Any]:
    """What the caller sees of a decision's context: shared signals and the chosen arm's."""
    chosen = context.arms[context.index(arm)]
    return {
        "query": dict(context.shared.get("Q", {})),
        "historical": dict(context.shared.get("H", {})),
        "arm": {ns: dict(values) for ns, values in chosen.namespaces.items()},
    }
