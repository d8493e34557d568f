"""``POST /route-and-run``, ``POST /route`` (decide only), ``POST /feedback`` and
``GET /requests/{id}``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from features.errors import RequestError
from learner.reward import RewardWeights
from router.api.admission import admit, feedback_target, settle
from router.api.deps import FeedbackCaller, ReadCaller, RouteCaller, get_runtime
from router.api.errors import error_body
from router.api.json_response import FastJSONResponse
from router.api.limits import check_prompt_size
from router.api.openai_format import COMPLETION_ID_PREFIX
from router.api.schemas import FeedbackBody, RouteAndRunBody, RouteBody
from router.auth.caller import Caller
from router.constraints import Constraints, request_needs
from router.feedback import Credited, record_feedback
from router.lifecycle.stages import StageOptions
from router.routing import (
    Decided,
    RouteEvent,
    RouteFailed,
    RouteRequest,
    RouteResult,
    Switch,
)
from router.runtime import Runtime
from store import decisions as decision_log
from store import requests as request_log
from store import rewards as reward_log

routes = APIRouter(tags=["routing"])

log = logging.getLogger("signalroute.api")

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def route_request(
    body: RouteBody, runtime: Runtime, tenant: str, api_key_id: str | None = None
) -> RouteRequest:
    """The core request for a validated body, with the pool's default objective filled in
    (and, for a decide-only body, the run's options at their defaults)."""
    run = body if isinstance(body, RouteAndRunBody) else None
    objective = runtime.pool.objective
    lambda_cost, lambda_latency = objective.lambda_cost, objective.lambda_latency
    if body.objective is not None:
        if body.objective.lambda_cost is not None:
            lambda_cost = body.objective.lambda_cost
        if body.objective.lambda_latency is not None:
            lambda_latency = body.objective.lambda_latency
    constraints = body.constraints
    messages = tuple(m.model_dump(exclude_none=True) for m in body.messages)
    return RouteRequest(
        messages=messages,
        weights=RewardWeights(
            lambda_cost=lambda_cost,
            lambda_latency=lambda_latency,
            cost_ref_usd=runtime.settings.cost_ref_usd,
            latency_ref_ms=objective.latency_reference_ms(runtime.settings.latency_ref_ms),
        ),
        tenant=tenant,
        api_key_id=api_key_id,
        user=body.user,
        session=body.session,
        response_format=body.response_format,
        constraints=(
            Constraints(
                max_cost_usd=constraints.max_cost_usd,
                max_latency_ms=constraints.max_latency_ms,
                capabilities=frozenset(constraints.capabilities),
            )
            if constraints is not None
            else Constraints()
        ).with_needs(request_needs(messages)),
        max_tokens=body.max_tokens,
        temperature=run.temperature if run else None,
        stream=run.stream if run else False,
        stages=stage_options(runtime, run),
        regex=run.validators.regex if run and run.validators else None,
        min_chars=run.validators.min_chars if run and run.validators else None,
        max_chars=run.validators.max_chars if run and run.validators else None,
        hints=body.hints or {},
    )


def stage_options(runtime: Runtime, body: RouteAndRunBody | None) -> StageOptions:
    """The pool's stage defaults with the request's overrides on top."""
    values = runtime.pool.stages.model_dump()
    if body is not None and body.stages is not None:
        values.update(body.stages.model_dump(exclude_none=True))
    return StageOptions(**values)


def result_body(result: RouteResult) -> dict[str, Any]:
    return {
        "id": result.request_id,
        "output": result.output,
        "model": result.model,
        "cost_usd": result.cost_usd,
        "latency_ms": round(result.latency_ms, 2),
        "finish_reason": result.finish_reason,
        "format_error": result.format_error,
        "trace": {
            "decisions": [d.as_json() for d in result.decisions],
            "components": [c.as_json() for c in result.components],
            "assessment": dict(result.assessment),
            "timings": dict(result.timings),
        },
    }


def failed_body(failure: RouteFailed) -> dict[str, Any]:
    body = error_body(failure.error.code, failure.error.message)
    body["id"] = failure.request_id
    body["trace"] = {"decisions": [d.as_json() for d in failure.decisions]}
    return body


@routes.post("/route-and-run", response_model=None)
async def route_and_run(
    body: RouteAndRunBody, runtime: RuntimeDep, caller: RouteCaller
) -> JSONResponse | StreamingResponse:
    """Route the request, run it on the chosen arm, and return the answer with its trace.

    With ``stream: true`` the answer arrives as server-sent events: ``delta`` events with
    text, ``switch`` events (everything streamed before a switch is replaced by what follows
    it), then one ``result`` event (the same body as the non-streaming response) or one
    ``error`` event.
    """
    check_prompt_size(body.messages, runtime.settings)
    tenant = caller.tenant(body.tenant)
    await admit(runtime, tenant, body.session)
    request = route_request(body, runtime, tenant, caller.key_id)
    events = runtime.router.run(request)
    if not request.stream:
        # The run is closed once the answer is sent (its policies unpinned, its reward
        # learned, its journal handed over): not left for the garbage collector. A coroutine
        # function, so Starlette awaits it on the loop (a bound ``aclose`` is not one:
        # Starlette would call it in a worker thread and never await what it returns).
        try:
            final = await final_event(events)
            if final is None:
                raise RequestError("the router produced no result")
            await settle(runtime, caller, final)
        except BaseException:
            await events.aclose()
            raise
        closing = BackgroundTask(close_run, events)
        headers = {"x-signalroute-request-id": final.request_id}
        if isinstance(final, RouteFailed):
            return FastJSONResponse(
                failed_body(final),
                status_code=final.error.status_code,
                headers=headers,
                background=closing,
            )
        return FastJSONResponse(result_body(final), headers=headers, background=closing)

    first = await _first_event(events)

    async def sse() -> AsyncIterator[str]:
        event: RouteEvent | None = first
        while event is not None:
            if isinstance(event, RouteResult | RouteFailed):
                await settle(runtime, caller, event)
            yield _sse_event(event)
            event = await anext(events, None)

    return StreamingResponse(sse(), media_type="text/event-stream")


async def final_event(run: AsyncIterator[RouteEvent]) -> RouteResult | RouteFailed | None:
    """The run's result or failure (its last event), or None when it ended without one."""
    async for event in run:
        if isinstance(event, RouteResult | RouteFailed):
            return event
    return None


async def close_run(events: AsyncGenerator[RouteEvent, None]) -> None:
    """Close a run whose answer was sent: it learns and hands its journal over now."""
    await events.aclose()


async def _first_event(events: AsyncIterator[RouteEvent]) -> RouteEvent | None:
    """Pull the first event before answering, so validation errors still become a 4xx."""
    return await anext(events, None)


def _sse_event(event: RouteEvent) -> str:
    if isinstance(event, RouteResult):
        return f"event: result\ndata: {json.dumps(result_body(event))}\n\n"
    if isinstance(event, RouteFailed):
        return f"event: error\ndata: {json.dumps(failed_body(event))}\n\n"
    if isinstance(event, Switch):
        return f"event: switch\ndata: {json.dumps(asdict(event))}\n\n"
    return f"event: delta\ndata: {json.dumps({'text': event.text})}\n\n"


def decided_body(decided: Decided) -> dict[str, Any]:
    decision = decided.decision
    return {
        "request_id": decided.request_id,
        "decision_id": decision.decision_id,
        "stage": decision.stage,
        "arm": decision.arm,
        "model": decided.model,
        "base_url": decided.base_url,
        "probability": decision.probability,
        "pmf": dict(decision.pmf),
        "policy": decision.policy,
        "policy_version": decision.policy_version,
        "masked": dict(decision.masked),
        "signals": dict(decision.signals),
        "timings": {name: round(ms, 3) for name, ms in decided.timings.items()},
    }


@routes.post("/route")
async def route(body: RouteBody, runtime: RuntimeDep, caller: RouteCaller) -> JSONResponse:
    """Decide only: choose the arm for this request without calling a model.

    The request and its pre-generation decision are logged with the probability the arm was
    drawn with, as any routed request's are. The caller runs ``model`` (at ``base_url``)
    itself and sends the outcome to ``POST /feedback`` (with ``decision_id`` or
    ``request_id``), which the policy learns from.
    """
    check_prompt_size(body.messages, runtime.settings)
    tenant = caller.tenant(body.tenant)
    await admit(runtime, tenant, body.session)
    decided = await runtime.router.decide(route_request(body, runtime, tenant, caller.key_id))
    runtime.metrics.route((decided.decision,))
    log.info(
        "request %s decided: %s (p=%.3f), run by the caller",
        decided.request_id,
        decided.decision.arm,
        decided.decision.probability,
        extra={"routed_request_id": decided.request_id, "arm": decided.decision.arm},
    )
    return FastJSONResponse(
        decided_body(decided), headers={"x-signalroute-request-id": decided.request_id}
    )


@routes.post("/feedback")
async def feedback(body: FeedbackBody, runtime: RuntimeDep, caller: FeedbackCaller) -> JSONResponse:
    """Record a delayed reward and learn from it; idempotent with ``idempotency_key``.

    With API keys, only the key that made the request may send its feedback. A second
    reward of the same source on a decision is recorded (201) with ``counted`` false and a
    ``note``: it is not learned. Feedback on a decision older than the feedback window gets
    422 (``feedback_window_closed``) and is not recorded.
    """
    if runtime.writer is not None:  # the request's rows may still be on their way
        await runtime.writer.wait(request_id=body.request_id, decision_id=body.decision_id)
    if caller.key is not None and (body.request_id is None) != (body.decision_id is None):
        await feedback_target(
            runtime, caller, request_id=body.request_id, decision_id=body.decision_id
        )
    result = await record_feedback(
        runtime.database,
        runtime.policies,
        reward=body.reward,
        source=body.source,
        decision_id=body.decision_id,
        request_id=body.request_id,
        idempotency_key=body.idempotency_key,
        learn=runtime.settings.role != "replica",
        window=timedelta(days=runtime.settings.feedback_window_days),
    )
    for credited in result.credited:
        if credited.created and credited.reward.counted:
            runtime.metrics.reward(credited.decision.stage, body.source, body.reward)
    primary = result.primary
    return FastJSONResponse(
        {
            "reward_id": primary.reward.id,
            "decision_id": str(primary.decision.id),
            "request_id": str(primary.decision.request_id),
            "reward": primary.reward.value,
            "source": primary.reward.source,
            "duplicate": not result.created,
            "counted": primary.reward.counted,
            "policy_updates": primary.policy_updates,
            "policy": primary.policy_name,
            **({"note": _not_counted(primary)} if not primary.reward.counted else {}),
            "credited": [
                {
                    "decision_id": str(c.decision.id),
                    "stage": c.decision.stage,
                    "arm": c.decision.chosen_arm,
                    "reward_id": c.reward.id,
                    "duplicate": not c.created,
                    "counted": c.reward.counted,
                    "policy": c.policy_name,
                    "policy_updates": c.policy_updates,
                }
                for c in result.credited
            ],
        },
        status_code=201 if result.created else 200,
    )


def _not_counted(credited: Credited) -> str:
    return (
        f"recorded, not learned: decision {credited.decision.id} already has a reward from "
        f"source {credited.reward.source!r} (reward {credited.counted_as}), and one source's "
        "reward on one decision is learned once"
    )


@routes.get("/requests/{request_id}")
async def get_request(request_id: str, runtime: RuntimeDep, caller: ReadCaller) -> dict[str, Any]:
    """The logged request, its decisions (with context and propensities) and their rewards.

    With API keys, only requests of the key's tenant are found.
    """
    return await logged_request(runtime, caller, request_id)


async def logged_request(runtime: Runtime, caller: Caller, request_id: str) -> dict[str, Any]:
    """The body of ``GET /requests/{id}``: NotFoundError for an unknown request and for one
    the caller may not see."""
    request_id = request_id.removeprefix(COMPLETION_ID_PREFIX)  # the id OpenAI clients see
    if runtime.writer is not None:
        await runtime.writer.wait(request_id=request_id)
    async with runtime.database.connection() as conn:
        record = await request_log.get_request(conn, request_id)
        caller.check_sees(record)
        decisions = await decision_log.list_decisions_for_request(conn, request_id)
        rewards = await reward_log.list_rewards_for_request(conn, request_id)
    by_decision: dict[str, list[dict[str, Any]]] = {}
    for reward in rewards:
        by_decision.setdefault(str(reward.decision_id), []).append(
            {
                "value": reward.value,
                "source": reward.source,
                "counted": reward.counted,
                "created_at": reward.created_at.isoformat(),
            }
        )
    return {
        "id": str(record.id),
        "tenant": record.tenant,
        "user": record.user_id,
        "status": record.status.value,
        "created_at": record.created_at.isoformat(),
        "messages": list(record.messages),
        "params": dict(record.params),
        "output": record.output,
        "model": record.model,
        "cost_usd": record.cost_usd,
        "latency_ms": record.latency_ms,
        "error": record.error,
        "trace": dict(record.trace) if record.trace is not None else None,
        "decisions": [
            {
                "decision_id": str(d.id),
                "stage": d.stage,
                "arm": d.chosen_arm,
                "probability": d.probability,
                "pmf": dict(d.pmf),
                "arms": list(d.arms),
                "policy": d.policy_name,
                "policy_version": d.policy_version,
                "context": dict(d.context),
                "outcome": d.outcome,
                "masked": dict(d.masked) if d.masked is not None else None,
                "details": dict(d.details) if d.details is not None else None,
                "cost_usd": d.cost_usd,
                "latency_ms": d.latency_ms,
                "created_at": d.created_at.isoformat(),
                "rewards": by_decision.get(str(d.id), []),
            }
            for d in decisions
        ],
    }
