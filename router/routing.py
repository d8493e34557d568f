"""The request lifecycle: every stage at which the router decides which model does the work.

``Router.run`` is the one orchestration path for streaming and non-streaming requests:

1. **log** the request (nothing is lost once it is accepted);
2. gather query, historical (pgvector neighbours) and system **signals**;
3. **pre-generation**: mask arms that violate the constraints or whose circuit is open, draw
   an arm, log the decision with its probability;
4. **in-generation**: stream the arm's answer through the detectors; when one fires (or the
   stream stalls) cut the run and let the in-generation policy pick another arm; a provider
   failure masks the arm and draws again;
5. **per-component**: split the answer into code and prose; a failed component is rewritten
   by an arm the component policy picks, with the accepted parts as context;
6. **post-generation**: validators, then the judge when the route asks for it; the
   escalation policy accepts the answer or escalates it, with the failed output and the
   reasons, to another arm;
7. every decision is **rewarded** (learned at once, logged once), the answer and its query
   embedding are stored.

In a stream, the first ``holdback_chars`` of a run are held back until they passed the
detectors, so a run cut early is never seen; when text already sent is replaced (a later
cut, an escalation, a repaired component), a ``Switch`` event comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from features.anomalies import standard_detectors
from features.categories import CategoryIndex
from features.components import (
    Component,
    assemble,
    attribute,
    check_component,
    first_of_kind,
    split_components,
)
from features.embedding import Embedder, Vector
from features.errors import (
    NoEligibleArmError,
    ProviderError,
    ProviderRateLimitedError,
    SignalrouteError,
    StoreUnavailableError,
)
from features.historical import HistoricalSignals, NeighbourOutcome, summarize
from features.output import output_features
from features.query import Message, QuerySignals, embed_query, query_signals
from features.system import ArmHealth, Spend
from features.validators import Expectations, run_validators
from learner.context import Context
from learner.reward import RewardWeights, shape_reward
from router.constraints import Constraints, Eligibility, eligible_arms
from router.contexts import (
    build_context,
    component_context,
    escalation_context,
    in_generation_context,
)
from router.health import HealthTracker
from router.lifecycle.assessment import Assessment, assess
from router.lifecycle.decisions import Decider, Drawn, trace
from router.lifecycle.generation import Cut, monitored_run
from router.lifecycle.journal import Completed, Failed, Journal, JournalWriter, RequestRow
from router.lifecycle.journal import write as write_journal
from router.lifecycle.judge import Judge
from router.lifecycle.prompts import component_messages, escalation_messages
from router.lifecycle.stages import (
    ACCEPT,
    COMPONENT,
    ESCALATE_PREFIX,
    ESCALATION,
    IN_GENERATION,
    PRE_GENERATION,
    StageOptions,
    escalate_action,
)
from router.policies import PolicyRegistry
from router.pool import Pool
from router.providers import ChatRequest, Completion, Delta, Provider
from router.spend import SpendTracker
from router.trace import (
    ComponentTrace,
    DecisionTrace,
    RouteEvent,
    RouteFailed,
    RouteResult,
    Switch,
)
from store import embeddings as embedding_store
from store import requests as request_log
from store.database import Database

__all__ = [
    "DecisionTrace",
    "RouteEvent",
    "RouteFailed",
    "RouteRequest",
    "RouteResult",
    "Router",
    "RouterConfig",
    "Switch",
]

Clock = Callable[[], float]

log = logging.getLogger("signalroute.routing")

MAX_REPAIRS = 2
"""Components rewritten per request, at most."""


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
    stages: StageOptions = field(default_factory=StageOptions)
    regex: str | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    api_key_id: str | None = None
    profile: str | None = None
    request_id: str | None = None

    def expectations(self) -> Expectations:
        return Expectations(
            response_format=self.response_format,
            regex=self.regex,
            min_chars=self.min_chars,
            max_chars=self.max_chars,
        )


@dataclass(frozen=True)
class RouterConfig:
    """``learn`` False is evaluation mode: decisions are drawn, logged and rewarded as usual,
    but no policy learns and no request is stored as a neighbour for later ones."""

    knn_k: int = 20
    max_attempts: int = 3
    learn: bool = True


@dataclass(frozen=True)
class _Prepared:
    """What every stage of one request needs."""

    request: RouteRequest
    request_id: str
    started: float
    embedding: Vector
    query: QuerySignals
    history: HistoricalSignals
    user_history: HistoricalSignals
    spend: Spend
    journal: Journal
    timings: dict[str, float] = field(default_factory=dict)

    def chat(self, messages: tuple[Message, ...] | None = None) -> ChatRequest:
        request = self.request
        return ChatRequest(
            messages=messages if messages is not None else request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            response_format=request.response_format,
        )


@dataclass(frozen=True)
class _Generated:
    """The run that produced an answer, its decision still waiting for its reward."""

    drawn: Drawn
    completion: Completion
    signals: Mapping[str, Any]
    masked: Mapping[str, str]


@dataclass
class _Ledger:
    """Decisions settled so far and what they cost, for one request."""

    traces: list[DecisionTrace] = field(default_factory=list)
    cost_usd: float = 0.0
    last_error: ProviderError | None = None

    def add(self, decision: DecisionTrace, cost_usd: float = 0.0) -> None:
        self.traces.append(decision)
        self.cost_usd += cost_usd

    def insert(self, index: int, decision: DecisionTrace, cost_usd: float = 0.0) -> None:
        """Add a decision settled late at the place it was made."""
        self.traces.insert(index, decision)
        self.cost_usd += cost_usd


class Router:
    """Runs a request through every stage, logging and learning each decision."""

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
        judge: Judge | None = None,
        writer: JournalWriter | None = None,
        config: RouterConfig = RouterConfig(),
        clock: Clock = time.perf_counter,
    ) -> None:
        self.pool = pool
        self._providers = providers
        self._database = database
        self._health = health
        self._spend = spend
        self._embedder = embedder
        self._categories = categories
        self._rng = rng
        self._judge = judge
        self._config = config
        self._clock = clock
        self._decider = Decider(policies, rng, learn=config.learn)
        self._writer = writer

    # --- signals ---------------------------------------------------------------------------

    def _health_now(self) -> dict[str, ArmHealth]:
        return {name: self._health.snapshot(name) for name in self.pool.names}

    async def _history(
        self, embedding: Vector, tenant: str, user: str | None
    ) -> tuple[HistoricalSignals, HistoricalSignals]:
        if not embedding.any():
            return HistoricalSignals(), HistoricalSignals()
        now = datetime.now(UTC)

        async def outcomes(user_id: str | None) -> list[Any]:
            async with self._database.connection() as conn:
                return list(
                    await embedding_store.neighbour_outcomes(
                        conn, embedding, k=self._config.knn_k, tenant=tenant, user_id=user_id
                    )
                )

        rows: list[Any]
        user_rows: list[Any]
        try:
            if user is None:
                rows, user_rows = await outcomes(None), []
            else:
                rows, user_rows = await asyncio.gather(outcomes(None), outcomes(user))
        except StoreUnavailableError as exc:
            log.warning("historical signals missing: %s", exc.message)
            return HistoricalSignals(missing=True), HistoricalSignals(missing=user is not None)

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

    def _eligibility(
        self, prep: _Prepared, health: Mapping[str, ArmHealth], exclude: set[str]
    ) -> Eligibility:
        request = prep.request
        return eligible_arms(
            self.pool.arms,
            health,
            request.constraints,
            prep.query.tokens_est,
            request.max_tokens,
            exclude=frozenset(exclude),
        )

    def _reward(self, prep: _Prepared, quality: float, cost_usd: float, latency_ms: float) -> float:
        return shape_reward(quality, cost_usd, latency_ms, prep.request.weights)

    # --- the lifecycle -----------------------------------------------------------------------

    async def run(self, request: RouteRequest) -> AsyncGenerator[RouteEvent, None]:
        """Route and run ``request``: text deltas and switches when streaming, then one
        ``RouteResult`` or ``RouteFailed``.

        Raises NoEligibleArmError (nothing logged) when no arm satisfies the constraints.
        """
        started = self._clock()
        embedding = embed_query(self._embedder, request.messages)
        query = query_signals(
            request.messages, request.response_format, embedding, self._categories
        )
        # Validate before logging anything: a request no arm can serve is a 4xx, not a row.
        eligible_arms(
            self.pool.arms,
            self._health_now(),
            request.constraints,
            query.tokens_est,
            request.max_tokens,
        )
        request_id = request.request_id or str(uuid.uuid4())

        journal = Journal(request_id=request_id, tenant=request.tenant, user_id=request.user)

        async def log_request() -> None:
            params = _request_params(request)
            try:
                async with self._database.connection() as conn:
                    await request_log.insert_request(
                        conn,
                        request_id=request_id,
                        messages=[dict(m) for m in request.messages],
                        params=params,
                        tenant=request.tenant,
                        user_id=request.user,
                        session_id=request.session,
                        api_key_id=request.api_key_id,
                    )
            except StoreUnavailableError:  # route anyway; the row goes with the journal
                journal.request = RequestRow(
                    messages=tuple(dict(m) for m in request.messages),
                    params=params,
                    session_id=request.session,
                    api_key_id=request.api_key_id,
                )

        # The request row and the neighbour look-up go to the store side by side.
        (history, user_history), _ = await asyncio.gather(
            self._history(embedding, request.tenant, request.user), log_request()
        )
        try:
            prep = _Prepared(
                request=request,
                request_id=request_id,
                started=started,
                embedding=embedding,
                query=query,
                history=history,
                user_history=user_history,
                spend=self._spend.spend(request.tenant, request.session),
                journal=journal,
            )
            async for event in self._lifecycle(prep):
                yield event
        finally:
            if not journal.written:
                await asyncio.shield(self._abandon(journal, started))

    async def _lifecycle(self, prep: _Prepared) -> AsyncIterator[RouteEvent]:
        ledger = _Ledger()
        generated: _Generated | None = None
        async for event in self._generate(prep, ledger):
            if isinstance(event, _Generated):
                generated = event
            else:
                yield event
        if generated is None:
            yield await self._fail(prep, ledger)
            return
        completion = generated.completion
        arm = completion.arm
        original = completion.text
        stages = prep.request.stages
        expect = prep.request.expectations()

        generation_at = len(ledger.traces)  # its trace goes before the stages that follow
        components = attribute(split_components(original), arm)
        components_passed = sum(1 for c in components if check_component(c) is None)
        if stages.components and len(components) >= 2 and components_passed < len(components):
            components = await self._repair(prep, ledger, components)
        text = assemble(components) if any(c.arm != arm for c in components) else original
        if text != original and prep.request.stream:
            yield Switch(
                COMPONENT,
                arm,
                "+".join(sorted({c.arm or arm for c in components})),
                "a component was rewritten",
            )
            yield Delta(text)

        assessment = await assess(
            text,
            completion.finish_reason,
            prep.request.messages,
            expect,
            stages,
            self._judge,
            self._rng,
        )
        ledger.cost_usd += assessment.judge_cost_usd
        original_check = run_validators(original, expect)
        if text == original:
            generation_quality = assessment.quality
        elif original_check.failed:
            generation_quality = 0.0
        else:
            generation_quality = components_passed / max(1, len(split_components(original)))
        reward = self._reward(prep, generation_quality, completion.cost_usd, completion.latency_ms)
        await self._decider.settle(prep.journal, generated.drawn, reward)
        ledger.insert(
            generation_at,
            trace(
                generated.drawn,
                outcome="ok" if original_check.passed else "ok, failed validation",
                reward=reward,
                signals=generated.signals,
                masked=generated.masked,
                cost_usd=completion.cost_usd,
                latency_ms=completion.latency_ms,
                details={"validators": [r.name for r in original_check.failed]},
            ),
            completion.cost_usd,
        )

        if stages.escalation:
            async for step in self._escalate(prep, ledger, text, completion, assessment):
                if isinstance(step, tuple):
                    text, arm, components, assessment = step
                else:
                    yield step

        latency_ms = (self._clock() - prep.started) * 1000.0
        final_finish: str | None = completion.finish_reason
        final_prompt_tokens: int | None = completion.prompt_tokens
        final_completion_tokens: int | None = completion.completion_tokens
        if arm != completion.arm:  # escalated: usage of the escalation call is in its trace
            final_finish = final_prompt_tokens = final_completion_tokens = None
        self._spend.add(prep.request.tenant, prep.request.session, ledger.cost_usd)
        await self._record(
            prep.journal,
            Completed(output=text, model=arm, cost_usd=ledger.cost_usd, latency_ms=latency_ms),
            prep.embedding if self._config.learn else None,
        )
        yield RouteResult(
            request_id=prep.request_id,
            output=text,
            model=arm,
            cost_usd=ledger.cost_usd,
            latency_ms=latency_ms,
            decisions=tuple(ledger.traces),
            components=tuple(
                ComponentTrace(index=i, kind=c.kind, arm=c.arm or arm, chars=len(c.text))
                for i, c in enumerate(components)
            ),
            assessment=assessment.as_json(),
            timings=dict(prep.timings),
            finish_reason=final_finish,
            prompt_tokens=final_prompt_tokens,
            completion_tokens=final_completion_tokens,
        )

    # --- pre- and in-generation ----------------------------------------------------------

    async def _generate(
        self, prep: _Prepared, ledger: _Ledger
    ) -> AsyncIterator[Delta | Switch | _Generated]:
        """Draw arms and run them until one completes; cut runs the detectors flag."""
        request = prep.request
        stages = request.stages
        excluded: set[str] = set()
        stage = PRE_GENERATION
        cut: tuple[str, Cut] | None = None
        shown_arm: str | None = None
        last_reason = ""
        errors = switches = 0
        while errors < self._config.max_attempts and switches <= stages.max_switches:
            health = self._health_now()
            try:
                eligibility = self._eligibility(prep, health, excluded)
            except NoEligibleArmError:
                return
            arms = tuple(self.pool.arm(name) for name in eligibility.eligible)
            context = build_context(
                arms, prep.query, prep.history, prep.user_history, health, prep.spend
            )
            if stage == IN_GENERATION and cut is not None:
                context = in_generation_context(
                    context, cut[0], cut[1].anomaly.detector, len(cut[1].text)
                )
            drawn = self._decider.draw(prep.journal, stage, context)
            arm = self.pool.arm(drawn.action)
            signals = _signals(drawn.context, arm.name)
            detectors = (
                standard_detectors(
                    query_language=prep.query.language,
                    json_requested=prep.query.json_requested,
                    max_cost_usd=request.constraints.max_cost_usd,
                    prompt_tokens=prep.query.tokens_est,
                    input_usd_per_mtok=arm.input_usd_per_mtok,
                    output_usd_per_mtok=arm.output_usd_per_mtok,
                )
                if stages.in_generation
                else []
            )
            held = ""
            released = False
            # Router overhead before the first model call: signals, kNN, policy, draw.
            prep.timings.setdefault("decision_ms", (self._clock() - prep.started) * 1000.0)
            self._health.started(arm.name)
            try:
                async for event in monitored_run(
                    self._providers[arm.name],
                    arm,
                    prep.chat(),
                    detectors,
                    stall_ms=stages.stall_ms,
                    clock=self._clock,
                ):
                    if isinstance(event, Delta):
                        if not request.stream:
                            continue
                        if released:
                            yield event
                            continue
                        held += event.text
                        if len(held) >= stages.holdback_chars:
                            if shown_arm is not None and shown_arm != arm.name:
                                yield Switch(stage, shown_arm, arm.name, last_reason)
                            yield Delta(held)
                            held, released, shown_arm = "", True, arm.name
                    elif isinstance(event, Cut):
                        self._health.cancelled(arm.name, event.latency_ms)
                        reward = self._reward(prep, 0.0, event.cost_usd, event.latency_ms)
                        await self._decider.settle(prep.journal, drawn, reward)
                        ledger.add(
                            trace(
                                drawn,
                                outcome=f"cut: {event.anomaly.reason}",
                                reward=reward,
                                signals=signals,
                                masked=eligibility.masked,
                                cost_usd=event.cost_usd,
                                latency_ms=event.latency_ms,
                                details={
                                    "detector": event.anomaly.detector,
                                    "chars_before_cut": len(event.text),
                                    "client_saw_text": released,
                                },
                            ),
                            event.cost_usd,
                        )
                        excluded.add(arm.name)
                        stage, cut = IN_GENERATION, (arm.name, event)
                        last_reason = event.anomaly.reason
                        switches += 1
                        break
                    else:
                        self._health.succeeded(
                            arm.name, event.latency_ms, event.rate_limit.headroom
                        )
                        if request.stream and not released:
                            if shown_arm is not None and shown_arm != arm.name:
                                yield Switch(stage, shown_arm, arm.name, last_reason)
                            if held:
                                yield Delta(held)
                        yield _Generated(drawn, event, signals, eligibility.masked)
                        return
            except ProviderError as exc:
                retry_after = (
                    exc.retry_after_s if isinstance(exc, ProviderRateLimitedError) else None
                )
                self._health.failed(arm.name, retry_after_s=retry_after)
                await self._decider.settle(prep.journal, drawn, 0.0)
                ledger.add(
                    trace(
                        drawn,
                        outcome=f"error: {exc.message}",
                        reward=0.0,
                        signals=signals,
                        masked=eligibility.masked,
                        details={"error": exc.code, "client_saw_text": released},
                    )
                )
                ledger.last_error = exc
                excluded.add(arm.name)
                last_reason = f"{arm.name} failed: {exc.code}"
                errors += 1

    # --- per-component ---------------------------------------------------------------------

    async def _repair(
        self, prep: _Prepared, ledger: _Ledger, components: list[Component]
    ) -> list[Component]:
        """Rewrite failed components with arms the component policy picks."""
        failures = [(i, r) for i, c in enumerate(components) if (r := check_component(c))]
        failed_indices = {i for i, _ in failures}
        for index, reason in failures[:MAX_REPAIRS]:
            failed = components[index]
            producer = failed.arm or ""
            health = self._health_now()
            try:
                eligibility = self._eligibility(prep, health, {producer})
            except NoEligibleArmError:
                break
            arms = tuple(self.pool.arm(name) for name in eligibility.eligible)
            context = component_context(
                arms, prep.query, failed.kind, reason.split(":")[0], len(failed.text), health
            )
            drawn = self._decider.draw(prep.journal, COMPONENT, context)
            accepted = [c for i, c in enumerate(components) if i not in failed_indices]
            messages = component_messages(prep.request.messages, accepted, failed, reason)
            details: dict[str, Any] = {"component": index, "kind": failed.kind, "failure": reason}
            self._health.started(drawn.action)
            try:
                completion = await self._providers[drawn.action].complete(prep.chat(messages))
            except ProviderError as exc:
                self._health.failed(drawn.action)
                await self._decider.settle(prep.journal, drawn, 0.0)
                ledger.add(
                    trace(
                        drawn,
                        outcome=f"error: {exc.message}",
                        reward=0.0,
                        masked=eligibility.masked,
                        details=details,
                    )
                )
                continue
            self._health.succeeded(drawn.action, completion.latency_ms)
            candidate = first_of_kind(completion.text, failed.kind)
            fixed = candidate is not None and check_component(candidate) is None
            if candidate is not None and fixed:
                components[index] = replace(candidate, arm=drawn.action)
                failed_indices.discard(index)
            reward = self._reward(
                prep, 1.0 if fixed else 0.0, completion.cost_usd, completion.latency_ms
            )
            await self._decider.settle(prep.journal, drawn, reward)
            ledger.add(
                trace(
                    drawn,
                    outcome="replaced" if fixed else "replacement failed too",
                    reward=reward,
                    masked=eligibility.masked,
                    cost_usd=completion.cost_usd,
                    latency_ms=completion.latency_ms,
                    details=details,
                ),
                completion.cost_usd,
            )
        return components

    # --- post-generation ---------------------------------------------------------------------

    async def _escalate(
        self,
        prep: _Prepared,
        ledger: _Ledger,
        text: str,
        completion: Completion,
        assessment: Assessment,
    ) -> AsyncIterator[Switch | Delta | tuple[str, str, list[Component], Assessment]]:
        """Accept the answer or escalate it; yields the new answer when one replaces it."""
        answered_by = completion.arm
        health = self._health_now()
        try:
            eligible = self._eligibility(prep, health, {answered_by}).eligible
        except NoEligibleArmError:
            return
        targets = tuple(
            self.pool.arm(name) for name in self.pool.escalation_arms() if name in eligible
        )
        if not targets:
            return
        output = output_features(
            text,
            completion.finish_reason,
            assessment.validation,
            assessment.judge_score,
            answered_by,
        )
        context = escalation_context(prep.query, output, targets, health, ACCEPT, escalate_action)
        drawn = self._decider.draw(prep.journal, ESCALATION, context)
        signals = {"query": dict(prep.query.as_features()), "output": output}
        details: dict[str, Any] = {"assessment": assessment.as_json()}
        if drawn.action == ACCEPT:
            reward = self._reward(prep, assessment.quality, 0.0, 0.0)
            await self._decider.settle(prep.journal, drawn, reward)
            ledger.add(
                trace(drawn, outcome="accepted", reward=reward, signals=signals, details=details)
            )
            return
        target = self.pool.arm(drawn.action.removeprefix(ESCALATE_PREFIX))
        reasons = assessment.reasons() or ["the escalation policy asked a stronger model"]
        messages = escalation_messages(prep.request.messages, text, reasons)
        details["reasons"] = reasons
        details["escalation_prompt"] = str(messages[-1].get("content", ""))
        new: Completion | None = None
        spent = 0.0
        self._health.started(target.name)
        try:
            async for event in monitored_run(
                self._providers[target.name],
                target,
                prep.chat(messages),
                standard_detectors(
                    query_language=prep.query.language,
                    json_requested=prep.query.json_requested,
                ),
                stall_ms=prep.request.stages.stall_ms,
                clock=self._clock,
            ):
                if isinstance(event, Cut):
                    self._health.cancelled(target.name, event.latency_ms)
                    spent = event.cost_usd
                    details["cut"] = event.anomaly.reason
                elif isinstance(event, Completion):
                    self._health.succeeded(target.name, event.latency_ms)
                    new = event
        except ProviderError as exc:
            self._health.failed(target.name)
            details["error"] = exc.message
        if new is None:
            reward = self._reward(prep, 0.0, spent, 0.0)
            await self._decider.settle(prep.journal, drawn, reward)
            ledger.add(
                trace(
                    drawn,
                    outcome="escalation failed; kept the answer",
                    reward=reward,
                    signals=signals,
                    cost_usd=spent,
                    details=details,
                ),
                spent,
            )
            return
        second = await assess(
            new.text,
            new.finish_reason,
            prep.request.messages,
            prep.request.expectations(),
            prep.request.stages,
            self._judge,
            self._rng,
        )
        cost = new.cost_usd + second.judge_cost_usd
        reward = self._reward(prep, second.quality, cost, new.latency_ms)
        await self._decider.settle(prep.journal, drawn, reward)
        better = second.quality >= assessment.quality
        details["escalated_assessment"] = second.as_json()
        ledger.add(
            trace(
                drawn,
                outcome="escalated; answer replaced" if better else "escalated; kept the answer",
                reward=reward,
                signals=signals,
                cost_usd=cost,
                latency_ms=new.latency_ms,
                details=details,
            ),
            cost,
        )
        if not better:
            return
        if prep.request.stream:
            yield Switch(ESCALATION, answered_by, target.name, "; ".join(reasons))
            yield Delta(new.text)
        yield new.text, target.name, attribute(split_components(new.text), target.name), second

    # --- endings -----------------------------------------------------------------------------

    async def _fail(self, prep: _Prepared, ledger: _Ledger) -> RouteFailed:
        cuts = [t for t in ledger.traces if t.outcome.startswith("cut")]
        if ledger.last_error is not None and len(cuts) < len(ledger.traces):
            error = ledger.last_error
        elif cuts:
            error = ProviderError(
                f"every run was cut ({'; '.join(t.outcome for t in cuts)})", arm=cuts[-1].arm
            )
        else:
            error = ProviderError("no arm was left to try", arm="")
        await self._record(
            prep.journal,
            Failed(
                error=error.message,
                model=ledger.traces[-1].arm if ledger.traces else None,
                latency_ms=(self._clock() - prep.started) * 1000.0,
            ),
        )
        return RouteFailed(request_id=prep.request_id, error=error, decisions=tuple(ledger.traces))

    async def _record(
        self, journal: Journal, outcome: Completed | Failed, embedding: Vector | None = None
    ) -> None:
        """Hand the journal to the background writer (or write it now, without one)."""
        if self._writer is not None:
            self._writer.submit(journal, outcome, embedding)
        else:
            await write_journal(self._database, journal, outcome, embedding)

    async def _abandon(self, journal: Journal, started: float) -> None:
        """Write what a run that ended early decided (client gone, an error) and mark it
        failed, so no decision or reward it learned from is lost."""
        try:
            await self._record(
                journal,
                Failed(
                    error="abandoned: the run ended before an answer was delivered",
                    model=journal.decisions[-1].chosen_arm if journal.decisions else None,
                    latency_ms=(self._clock() - started) * 1000.0,
                ),
            )
        except SignalrouteError as exc:
            log.warning(
                "request %s: could not write its journal: %s", journal.request_id, exc.message
            )


def _request_params(request: RouteRequest) -> dict[str, Any]:
    constraints = request.constraints
    stages = request.stages
    return {
        "response_format": dict(request.response_format) if request.response_format else None,
        "constraints": {
            "max_cost_usd": constraints.max_cost_usd,
            "max_latency_ms": constraints.max_latency_ms,
            "capabilities": sorted(constraints.capabilities),
            "arms": sorted(constraints.arms) if constraints.arms is not None else None,
        },
        "profile": request.profile,
        "objective": {
            "lambda_cost": request.weights.lambda_cost,
            "lambda_latency": request.weights.lambda_latency,
        },
        "stages": {
            "in_generation": stages.in_generation,
            "escalation": stages.escalation,
            "components": stages.components,
            "judge": stages.judge,
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
        **({"cut": dict(context.shared["I"])} if "I" in context.shared else {}),
        "arm": {ns: dict(values) for ns, values in chosen.namespaces.items()},
    }
