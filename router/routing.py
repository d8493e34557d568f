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
   by an arm the component policy picks, with the accepted parts as context (failed by its
   own check here; by the judge's per-component verdict, ``judge_components``, once the
   answer was judged, before the whole answer would be escalated);
6. **post-generation**: validators, then the judge when the route asks for it; the
   escalation policy accepts the answer or escalates it, with the failed output and the
   reasons, to another arm; with ``max_escalations`` above 1 an escalated answer goes
   through this step again (to an arm not tried yet) until the policy accepts, an
   escalation fails or brings no better answer, or the steps run out;
7. every decision is **rewarded** (learned at once, logged once), the answer and its query
   embedding are stored.

In a stream, the first ``holdback_chars`` of a run are held back until they passed the
detectors, so a run cut early is never seen; when text already sent is replaced (a later
cut, an escalation, a repaired component), a ``Switch`` event comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import numpy as np

from features.categories import CategoryIndex
from features.components import (
    Component,
    assemble,
    attribute,
    check_component,
    split_components,
)
from features.embedding import Embedder, Vector
from features.errors import (
    NoEligibleArmError,
    ProviderError,
    SignalrouteError,
    StoreUnavailableError,
)
from features.historical import HistoricalSignals, PastOutcome, summarize
from features.query import embed_query, query_signals
from features.tool_calls import CHECK_NAMES as TOOL_CHECK_NAMES
from features.validators import run_validators
from features.verdicts import ValidationSummary
from learner.anchor import DEFAULT_ANCHOR, AnchorConfig
from router import tracing
from router.constraints import eligible_arms
from router.conversations import RecentTurns, previous_turn_key, turn_key
from router.health import HealthTracker
from router.history_index import HistoryIndex
from router.lifecycle.assessment import Assessment, assess, failed_tool_calls
from router.lifecycle.decisions import Decider, trace
from router.lifecycle.escalation import Escalated, escalate
from router.lifecycle.generating import (
    FAILED_RUN_REWARD,
    choose,
    decision_signals,
    generate,
)
from router.lifecycle.journal import (
    Completed,
    Delegated,
    Failed,
    Journal,
    JournalWriter,
    Outcome,
    PendingRequest,
    RequestRow,
)
from router.lifecycle.journal import write as write_journal
from router.lifecycle.judge import Judge
from router.lifecycle.judge_gate import JudgeGate
from router.lifecycle.kit import StageKit
from router.lifecycle.prompts import rendered_answer
from router.lifecycle.repair import repair, repair_judged
from router.lifecycle.request import RouteRequest
from router.lifecycle.stages import COMPONENT, PRE_GENERATION
from router.lifecycle.state import AfterAnswer, CheckedArms, Generated, Ledger, Prepared
from router.policies import PolicyRegistry
from router.pool import Pool
from router.providers import Delta, Provider
from router.spend import SpendTracker
from router.trace import (
    ComponentTrace,
    Decided,
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
    "Decided",
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
WallClock = Callable[[], datetime]
"""What time it is, timezone-aware: the age of a historical neighbour is counted up to it."""


def utc_now() -> datetime:
    return datetime.now(UTC)


E = TypeVar("E")
T = TypeVar("T")

log = logging.getLogger("signalroute.routing")


PreCredit = Literal["answer", "request"]


@dataclass(frozen=True)
class RouterConfig:
    """``learn`` False is evaluation mode: decisions are logged and rewarded as usual, but
    each takes the frozen policy's greedy arm (logged with the probability it was taken
    with), no policy learns and no request is stored as a neighbour for later ones."""

    knn_k: int = 20
    max_attempts: int = 3
    learn: bool = True
    anchor: AnchorConfig | None = DEFAULT_ANCHOR
    """Rule anchoring of the stages that have a rule (``learner.anchor``); None: off."""
    pre_credit: PreCredit = "answer"
    """What the pre-generation decision is rewarded for: its own ``answer`` (quality, cost
    and latency of the arm's run), or the whole ``request`` it led to (the delivered
    answer's quality against everything spent: judge, escalations, repairs)."""
    store_read_timeout_s: float = 2.0
    """How long a look-up in the store on the request's way may take (``within``)."""


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
        history_index: HistoryIndex | None = None,
        wall_clock: WallClock = utc_now,
    ) -> None:
        self.pool = pool
        self._providers = providers
        self._database = database
        self._health = health
        self._spend = spend
        self._embedder = embedder
        self._categories = categories
        self._rng = rng
        self._gate_rng = rng.spawn(1)[0]  # the judge gate's draws leave ``rng``'s stream be
        self._judge = judge
        self._config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self._policies = policies
        self._decider = Decider(policies, rng, learn=config.learn, anchor=config.anchor)
        self._kit = StageKit(
            pool=pool,
            providers=providers,
            health=health,
            decider=self._decider,
            rng=rng,
            judge=judge,
            max_attempts=config.max_attempts,
            clock=clock,
        )
        self._writer = writer
        self._history_index = history_index  # None: every look-up asks the store
        self._recent = RecentTurns()

    # --- signals ---------------------------------------------------------------------------

    def _indexed_history(
        self, embedding: Vector, tenant: str, user: str | None
    ) -> tuple[HistoricalSignals, HistoricalSignals] | None:
        """The historical signals from the in-process index (``router.history_index``);
        None when it is off or not loaded yet: then the store answers (``_history``)."""
        index = self._history_index
        if index is None or not index.ready or not embedding.any():
            return None
        now, k = self._wall_clock(), self._config.knn_k
        rows, user_rows = index.tenant_and_user_outcomes(
            embedding, k=k, tenant=tenant, user_id=user
        )
        return summarize(rows, now), summarize(user_rows, now)

    async def _history(
        self, embedding: Vector, tenant: str, user: str | None
    ) -> tuple[HistoricalSignals, HistoricalSignals]:
        if not embedding.any():
            return HistoricalSignals(), HistoricalSignals()
        now = self._wall_clock()

        async def outcomes(user_id: str | None) -> list[PastOutcome]:
            async with self._database.connection(transaction=False) as conn:
                return list(
                    await embedding_store.neighbour_outcomes(
                        conn, embedding, k=self._config.knn_k, tenant=tenant, user_id=user_id
                    )
                )

        timeout_s = self._config.store_read_timeout_s

        rows: list[PastOutcome]
        user_rows: list[PastOutcome]
        try:
            if user is None:
                rows, user_rows = await within(outcomes(None), timeout_s, "the neighbours"), []
            else:
                rows, user_rows = await within(
                    asyncio.gather(outcomes(None), outcomes(user)), timeout_s, "the neighbours"
                )
        except StoreUnavailableError as exc:
            log.warning("historical signals missing: %s", exc.message)
            return HistoricalSignals(missing=True), HistoricalSignals(missing=user is not None)

        return summarize(rows, now), summarize(user_rows, now)

    async def _previous_arm(self, request: RouteRequest) -> str | None:
        """The arm of the conversation's previous turn (``router.conversations``): found by
        the messages, else by the session; in memory first, then in the store."""
        if request.stickiness == "free":
            return None
        key = previous_turn_key(request.messages)
        session = f"session:{request.session}" if request.session else None
        for memory_key in (key, session):
            arm = self._recent.arm(request.tenant, memory_key) if memory_key else None
            if arm is not None:
                return arm if arm in self.pool.names else None
        if key is None and request.session is None:
            return None

        async def stored() -> str | None:
            async with self._database.connection(transaction=False) as conn:
                return await request_log.previous_turn_arm(
                    conn, request.tenant, turn_key=key, session_id=request.session
                )

        try:
            arm = await within(
                stored(), self._config.store_read_timeout_s, "the previous turn's arm"
            )
        except StoreUnavailableError as exc:
            log.warning("previous turn unknown: %s", exc.message)
            return None
        return arm if arm in self.pool.names else None

    # --- the lifecycle -----------------------------------------------------------------------

    def run(self, request: RouteRequest) -> AsyncGenerator[RouteEvent, None]:
        """Route and run ``request``: text deltas and switches when streaming, then one
        ``RouteResult`` or ``RouteFailed``.

        Raises NoEligibleArmError (nothing logged) when no arm satisfies the constraints.
        """
        return self._prepared(request, self._lifecycle)

    async def decide(self, request: RouteRequest) -> Decided:
        """Decide only: log ``request``, gather its signals and draw its pre-generation arm
        (logged with its probability, like any decision), without calling a model. The
        caller runs the arm itself; its reward comes back as feedback on the decision.

        Raises NoEligibleArmError (nothing logged) when no arm satisfies the constraints.
        """
        decided: Decided | None = None
        async for event in self._prepared(request, self._delegate):
            decided = event
        assert decided is not None, "a delegation yields its decision or raises"
        return decided

    async def _prepared(
        self, request: RouteRequest, lifecycle: Callable[[Prepared], AsyncGenerator[E, None]]
    ) -> AsyncGenerator[E, None]:
        """Log ``request``, gather its signals, and run ``lifecycle`` on them; the journal is
        written however the run ends."""
        if self._writer is not None and not self._writer.admitting_at_once:  # a queue: wait
            await self._writer.admit()
        clock = self._clock
        started = clock()
        embedding = embed_query(self._embedder, request.messages)
        embedded = clock()
        # The neighbour look-up: answered at once by the in-process index when there is one;
        # else it goes to the store now, and the query signals are computed while it is under way.
        looking_up: asyncio.Future[tuple[HistoricalSignals, HistoricalSignals]]
        indexed = self._indexed_history(embedding, request.tenant, request.user)
        if indexed is not None:  # answered in process: no task, no turn of the loop
            looking_up = asyncio.get_running_loop().create_future()
            looking_up.set_result(indexed)
        else:
            looking_up = asyncio.ensure_future(
                self._history(embedding, request.tenant, request.user)
            )
            await asyncio.sleep(0)  # let it send its query
        try:
            signals_at = clock()
            query = query_signals(
                request.messages,
                request.response_format,
                embedding,
                self._categories,
                request.hints,
            )
            timings = {
                "embed_ms": (embedded - started) * 1000.0,
                "query_signals_ms": (clock() - signals_at) * 1000.0,
            }
            # Validate before logging anything: a request no arm can serve is a 4xx, not a row.
            changes, health = self._health.changes, self._kit.health_now()
            checked = CheckedArms(
                health,
                eligible_arms(
                    self.pool.arms,
                    health,
                    request.constraints,
                    query.tokens_est,
                    request.max_tokens,
                ),
                changes,
            )
        except BaseException:
            looking_up.cancel()
            raise
        request_id = request.request_id or str(uuid.uuid4())
        tracing.annotate(request_id=request_id, tenant=request.tenant)

        journal = Journal(request_id=request_id, tenant=request.tenant, user_id=request.user)
        after = AfterAnswer()

        params = _request_params(request)
        turn = turn_key(request.messages)
        params["turn_key"] = turn
        row = RequestRow(
            messages=tuple(dict(m) for m in request.messages),
            params=params,
            session_id=request.session,
            api_key_id=request.api_key_id,
        )

        async def log_request() -> None:
            try:
                with tracing.span(
                    "signalroute.store.insert_request", tracing.store_attributes("insert_request")
                ):
                    async with self._database.connection(transaction=False) as conn:
                        await request_log.insert_request(
                            conn,
                            request_id=request_id,
                            messages=row.messages,
                            params=params,
                            tenant=request.tenant,
                            user_id=request.user,
                            session_id=request.session,
                            api_key_id=request.api_key_id,
                        )
            except StoreUnavailableError:  # route anyway; the row goes with the journal
                journal.request = row

        try:  # from here on, the journal is written however the run ends
            if self._writer is not None:  # logged in the background, before the journal
                try:  # queued once the look-up is back: its write then waits for the model call
                    history, user_history = await looking_up
                finally:
                    self._writer.log_request(
                        PendingRequest(request_id, request.tenant, request.user, row)
                    )
            else:  # the request row and the neighbour look-up go to the store side by side
                inserting = asyncio.ensure_future(log_request())
                try:
                    history, user_history = await looking_up
                finally:  # the row is in before a failed look-up's journal is written
                    await inserting
            timings["history_ms"] = (clock() - embedded) * 1000.0
            previous_arm = await self._previous_arm(request)
            prep = Prepared(
                request=request,
                request_id=request_id,
                started=started,
                embedding=embedding,
                query=query,
                history=history,
                user_history=user_history,
                spend=self._spend.spend(request.tenant, request.session),
                journal=journal,
                timings=timings,
                previous_arm=previous_arm,
                turn_key=turn,
                checked=checked,
                after=after,
            )
            async with (
                self._policies.pinned(request.tenant),  # its policies stay in memory
                contextlib.aclosing(lifecycle(prep)) as events,  # closed first, when we are
            ):
                async for event in events:
                    yield event
        finally:  # closed after its result (the answer sent), resumed past it, or ended early
            if after.pending or not journal.written:
                await _to_the_end(self._close(journal, started, after))

    async def _close(self, journal: Journal, started: float, after: AfterAnswer) -> None:
        """What a run leaves to do, in order: what its answer left (``_after_answer``), then,
        when that did not hand the journal over, abandon it with everything it holds."""
        if after.pending:
            await self._after_answer(journal, after)
        if not journal.written:
            await self._abandon(journal, started)

    async def _after_answer(self, journal: Journal, after: AfterAnswer) -> None:
        """Learn the generation's rewards (each journaled with the update it was learned as),
        then hand the journal to the writer when the answer was delivered. A failure here is
        logged, not raised: the answer is already out (an undelivered journal is abandoned
        by ``_close``, rewards and all)."""
        try:
            for drawn, reward in after.rewards:
                try:
                    await self._decider.settle(journal, drawn, reward)
                except Exception:
                    log.exception("request %s: learning its reward failed", journal.request_id)
            if after.outcome is not None:
                try:
                    await self._record(journal, after.outcome, after.embedding)
                except Exception:
                    log.exception("request %s: its journal was not handed over", journal.request_id)
        finally:
            if self._writer is not None:
                self._writer.release(journal.request_id)

    async def _lifecycle(self, prep: Prepared) -> AsyncGenerator[RouteEvent, None]:
        ledger = Ledger()
        after = prep.after
        generated: Generated | None = None
        async for event in generate(self._kit, prep, ledger):
            if isinstance(event, Generated):
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
        original_parts = len(components)
        components_passed = sum(1 for c in components if check_component(c) is None)
        if stages.components and len(components) >= 2 and components_passed < len(components):
            components = await repair(self._kit, prep, ledger, components)
        text = assemble(components) if any(c.arm != arm for c in components) else original
        if text != original and prep.request.stream:
            yield Switch(
                COMPONENT,
                arm,
                "+".join(sorted({c.arm or arm for c in components})),
                "a component was rewritten",
            )
            yield Delta(text)

        gate = (
            JudgeGate(self._kit, prep, ledger, completion, rng=self._gate_rng)
            if stages.judge == "learned" and self._judge is not None
            else None
        )
        assessment = await assess(
            text,
            completion.finish_reason,
            prep.request.messages,
            expect,
            stages,
            self._judge,
            self._rng,
            calls=completion.tool_calls,
            components=components if stages.judge_components else (),
            gate=None if gate is None else gate.decide,
        )
        first_assessment = assessment
        ledger.cost_usd += assessment.judge_cost_usd
        verdicts = assessment.verdict.components if assessment.verdict is not None else ()
        # The assessment already validated the answer when no component was rewritten.
        original_check = (
            assessment.validation if text == original else run_validators(original, expect)
        )
        if text == original:
            generation_quality = assessment.quality
        elif original_check.failed:
            generation_quality = 0.0
        else:
            generation_quality = components_passed / max(1, original_parts)

        previous = prep.previous_arm
        switched = previous is not None and previous != arm
        if switched and prep.request.stickiness != "prefer":
            switched = False  # a pinned turn left its arm for a reason; free ones do not count

        async def settle_generation(reward: float, credit: str) -> None:
            if switched:  # leaving the conversation's arm costs (its cache, its habits)
                reward = max(0.0, reward - prep.request.switch_cost)
            # With a background writer, the generation's reward is learned (and journaled)
            # once the answer is out: it does not change the answer, and no later stage of
            # this request draws from the policy that learns it.
            if self._writer is not None:
                after.rewards.append((generated.drawn, reward))
            else:
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
                    details={
                        "validators": [r.name for r in original_check.failed],
                        "credit": credit,
                        **({"last_run": True} if generated.last_run else {}),
                        **({"previous_turn_arm": previous} if previous is not None else {}),
                        **({"switch_cost": prep.request.switch_cost} if switched else {}),
                        **(
                            {"component_verdicts": [v.as_json() for v in verdicts]}
                            if verdicts
                            else {}
                        ),
                        **(
                            {"tool_calls": [c.as_json() for c in completion.tool_calls]}
                            if completion.tool_calls
                            else {}
                        ),
                    },
                ),
                completion.cost_usd,
            )

        credit_request = self._config.pre_credit == "request" and stages.escalation
        if not credit_request:
            reward = (
                FAILED_RUN_REWARD
                if failed_tool_calls(original_check)
                else self._kit.reward(
                    prep, generation_quality, completion.cost_usd, completion.latency_ms
                )
            )
            await settle_generation(reward, "answer")

        if stages.components and stages.judge_components:
            judged = components
            components, assessment = await repair_judged(
                self._kit, prep, ledger, components, assessment
            )
            if components is not judged:
                text = assemble(components)
                if prep.request.stream:
                    yield Switch(
                        COMPONENT,
                        arm,
                        "+".join(sorted({c.arm or arm for c in components})),
                        "the judge failed a component",
                    )
                    yield Delta(text)

        answer = completion
        if stages.escalation:
            tried = frozenset[str]()
            for step_number in range(1, stages.max_escalations + 1):
                replaced: Escalated | None = None
                async for step in escalate(
                    self._kit,
                    prep,
                    ledger,
                    text,
                    answer,
                    assessment,
                    tried=tried,
                    chained=step_number < stages.max_escalations,
                ):
                    if isinstance(step, Escalated):
                        replaced = step
                    else:
                        yield step
                if replaced is None:
                    break
                tried |= {answer.arm}
                answer, assessment = replaced.completion, replaced.assessment
                text, arm, components = answer.text, answer.arm, replaced.components

        if gate is not None:
            await gate.settle(first_assessment, assessment)
        latency_ms = (self._clock() - prep.started) * 1000.0
        if credit_request:  # what the choice led to: the delivered answer, for all it cost
            spent = ledger.cost_usd + completion.cost_usd
            await settle_generation(
                FAILED_RUN_REWARD
                if failed_tool_calls(assessment.validation)
                else self._kit.reward(prep, assessment.quality, spent, latency_ms),
                "request",
            )
        # The provider's token counts describe the answer only when it is one call's text.
        reported = answer.usage_reported and text == answer.text
        self._spend.add(prep.request.tenant, prep.request.session, ledger.cost_usd)
        self._served(prep, arm)
        prep.journal.settled(ledger.traces)
        parts = component_traces(components, arm, assessment)
        assessed = assessment.as_json()
        completed = Completed(
            output=rendered_answer(text, answer.tool_calls if text == answer.text else ()),
            model=arm,
            cost_usd=ledger.cost_usd,
            latency_ms=latency_ms,
            trace={
                "components": [part.as_json() for part in parts],
                "assessment": assessed,
                "timings": dict(prep.timings),
            },
        )
        embedding = prep.embedding if self._config.learn else None
        result = RouteResult(
            request_id=prep.request_id,
            output=text,
            model=arm,
            cost_usd=ledger.cost_usd,
            latency_ms=latency_ms,
            decisions=tuple(ledger.traces),
            components=parts,
            assessment=assessed,
            timings=dict(prep.timings),
            finish_reason=answer.finish_reason,
            prompt_tokens=answer.prompt_tokens if reported else None,
            completion_tokens=answer.completion_tokens if reported else None,
            format_error=format_error(assessment.validation),
            tool_calls=answer.tool_calls if text == answer.text else (),
        )
        if self._writer is None:  # written before the answer, as it is read back
            await self._record(prep.journal, completed, embedding)
            yield result
            return
        after.outcome, after.embedding = completed, embedding
        self._writer.hold(prep.journal)  # readers of its rows wait for the hand-off
        yield result

    # --- decide only -------------------------------------------------------------------------

    async def _delegate(self, prep: Prepared) -> AsyncGenerator[Decided, None]:
        """The decide-only lifecycle: one pre-generation draw, journaled as delegated."""
        try:
            eligibility, drawn = choose(self._kit, prep, PRE_GENERATION, set())
        except NoEligibleArmError as exc:  # the arms changed since the request was checked
            await self._record(
                prep.journal,
                Failed(error=exc.message, model=None, latency_ms=self._elapsed_ms(prep)),
            )
            raise
        arm = self.pool.arm(drawn.action)
        decision = trace(
            drawn,
            outcome="delegated",
            reward=None,
            signals=decision_signals(drawn.context, arm.name),
            masked=eligibility.masked,
        )
        prep.journal.settled([decision])
        self._served(prep, arm.name)  # the conversation's next turn may stick to it
        await self._record(
            prep.journal,
            Delegated(model=arm.name, latency_ms=self._elapsed_ms(prep)),
            prep.embedding if self._config.learn else None,
        )
        yield Decided(
            request_id=prep.request_id,
            decision=decision,
            model=arm.model,
            base_url=arm.base_url,
            timings=dict(prep.timings),
        )

    def _served(self, prep: Prepared, arm: str) -> None:
        """Remember that ``arm`` served this turn of the conversation (and of its session),
        for ``_previous_arm``."""
        request = prep.request
        self._recent.served(request.tenant, prep.turn_key, arm)
        if request.session:
            self._recent.served(request.tenant, f"session:{request.session}", arm)

    def _elapsed_ms(self, prep: Prepared) -> float:
        return (self._clock() - prep.started) * 1000.0

    # --- endings -----------------------------------------------------------------------------

    async def _fail(self, prep: Prepared, ledger: Ledger) -> RouteFailed:
        cuts = [t for t in ledger.traces if t.outcome.startswith("cut")]
        if ledger.last_error is not None and len(cuts) < len(ledger.traces):
            error = ledger.last_error
        elif cuts:
            error = ProviderError(
                f"every run was cut ({'; '.join(t.outcome for t in cuts)})", arm=cuts[-1].arm
            )
        else:
            error = ProviderError("no arm was left to try", arm="")
        prep.journal.settled(ledger.traces)
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
        self, journal: Journal, outcome: Outcome, embedding: Vector | None = None
    ) -> None:
        """Hand the journal to the background writer (or write it now, without one)."""
        if embedding is not None and self._history_index is not None:
            # seen by the next request at once
            self._history_index.note(journal, embedding, self._wall_clock())
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


async def within(work: Awaitable[T], timeout_s: float, what: str) -> T:
    """``work``'s result, or StoreUnavailableError once ``timeout_s`` has passed. The work
    is then cancelled and not waited for: a query to a store that hangs takes psycopg up to
    10 s more to cancel, and the request has gone on by then."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except BaseException:  # this request was cancelled: so is its look-up
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_outcome_unwanted)
        raise StoreUnavailableError(f"the store did not answer {what} within {timeout_s:g} s")
    return task.result()


def _outcome_unwanted(task: asyncio.Future[Any]) -> None:
    """Retrieve a look-up's outcome nobody waits for any more (no "never retrieved")."""
    if not task.cancelled():
        task.exception()


async def _to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even when the caller is cancelled meanwhile: the caller then
    waits for it, and the cancellation is raised once it has ended."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def component_traces(
    components: list[Component], arm: str, assessment: Assessment
) -> tuple[ComponentTrace, ...]:
    """The final answer's parts: who wrote each, whether it replaced the answering arm's
    own, and the judge's grade of it when the answer was judged per component."""
    verdict = assessment.verdict
    grades = {v.index: v for v in verdict.components} if verdict is not None else {}
    return tuple(
        ComponentTrace(
            index=i,
            kind=c.kind,
            arm=c.arm or arm,
            chars=len(c.text),
            replaced=(c.arm or arm) != arm,
            score=grades[i].score if i in grades else None,
            reason=grades[i].reason if i in grades else None,
        )
        for i, c in enumerate(components)
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
        "hints": dict(request.hints),
        "conversation": request.stickiness,
        "objective": {
            "lambda_cost": request.weights.lambda_cost,
            "lambda_latency": request.weights.lambda_latency,
            "latency_ref_ms": request.weights.latency_ref_ms,
        },
        "stages": {
            "in_generation": stages.in_generation,
            "escalation": stages.escalation,
            "components": stages.components,
            "judge": stages.judge,
            **({"judge_rule": stages.judge_rule} if stages.judge == "learned" else {}),
            "max_switches": stages.max_switches,
            "max_escalations": stages.max_escalations,
            "escalation_ladder": stages.escalation_ladder,
            "escalation_context": stages.escalation_context,
            "judge_components": stages.judge_components,
        },
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": request.stream,
        "needs": dict(constraints.needs),
        **({"fields": dict(request.fields)} if request.fields else {}),
    }


def format_error(validation: ValidationSummary) -> str | None:
    """Why the delivered answer misses the form the request's contract demands (None when it
    does not): a requested JSON format, or the offered tools (a call that is not JSON, fails
    its schema, names a function not offered, or a forced or required call not made). The
    client is told so instead of receiving the answer as a plain one."""
    for result in validation.failed:
        if result.name == "json":
            return result.reason
        if result.name in TOOL_CHECK_NAMES:
            return f"{result.name}: {result.reason}"
    return None
