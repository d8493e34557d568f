"""``/v1/chat/completions`` and ``/v1/models``: the OpenAI-compatible surface.

``model`` names a route profile (``signalroute/auto``, or ``signalroute/<name>`` from the pool
file) or an arm. A profile routes the request through every stage with the profile's arms,
objective and stage options; an arm gets the request directly (routing bypassed, the request
still logged and its cost counted). Routing details travel in ``x-signalroute-*`` headers and
in one extra top-level field, ``signalroute``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask, BackgroundTasks

from features.errors import NoEligibleArmError, NotFoundError, ProviderError
from learner.reward import RewardWeights
from router.api.admission import admit, settle
from router.api.bypass import bypass
from router.api.deps import RouteCaller, RuntimeDep
from router.api.errors import error_body
from router.api.json_response import FastJSONResponse
from router.api.limits import check_prompt_size
from router.api.openai_fields import check_fields, forwarded_params
from router.api.openai_format import (
    COMPLETION_ID_PREFIX,
    DONE,
    EXTRA_FIELD,
    SSE_HEADERS,
    Usage,
    chunk,
    completion_body,
    error_event,
    estimated_usage,
    text_pieces,
    tool_call_chunk,
    usage_chunk,
)
from router.api.route import close_run, final_event, result_body
from router.api.schemas import ChatCompletionBody
from router.auth.caller import Caller
from router.constraints import Constraints, missing_needs, request_needs
from router.lifecycle.stages import ESCALATE_PREFIX, StageOptions
from router.pool import Profile
from router.providers import Delta, Provider
from router.providers.base import tool_call_deltas
from router.routing import RouteRequest
from router.runtime import Runtime
from router.trace import DecisionTrace, RouteEvent, RouteFailed, RouteResult, Switch

routes = APIRouter(tags=["openai"])


@routes.get("/v1/models")
async def list_models(runtime: RuntimeDep, caller: RouteCaller) -> dict[str, Any]:
    """The route profiles, then the arms of the pool, as OpenAI model objects."""
    pool = runtime.pool
    models: list[dict[str, Any]] = []
    for model_id in pool.profile_ids:
        profile = pool.profile(model_id)
        assert profile is not None
        models.append(
            _model(
                model_id,
                {
                    "kind": "profile",
                    "description": profile.description,
                    "arms": list(profile.arms or pool.names),
                },
            )
        )
    models += [_model(arm.name, {"kind": "arm"}) for arm in pool.arms]
    return {"object": "list", "data": models}


def _model(model_id: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": "signalroute",
        "signalroute": details,
    }


@routes.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionBody, runtime: RuntimeDep, caller: RouteCaller
) -> JSONResponse | StreamingResponse:
    """Route the request with the profile ``model`` names, or send it to the arm it names."""
    check_prompt_size(body.messages, runtime.settings)
    tenant = caller.tenant(body.tenant)
    profile = runtime.pool.profile(body.model)
    provider = runtime.providers.get(body.model)
    if profile is None and provider is None:
        known = ", ".join((*runtime.pool.profile_ids, *runtime.pool.names))
        raise NotFoundError(f"unknown model {body.model!r}; this router serves: {known}")
    check_fields(body.sent(), routed=profile is not None)
    if profile is None:  # a named arm must have what the request needs
        missing = missing_needs(runtime.pool.arm(body.model), needs_of(body))
        if missing is not None:
            raise NoEligibleArmError(f"{body.model} cannot serve this request: {missing}")
    await admit(runtime, tenant, body.session)
    choices = body.n or 1
    if choices == 1:
        return await _answer(runtime, caller, body, tenant, profile, provider)
    single = body.model_copy(update={"n": None})
    answers: list[JSONResponse | StreamingResponse] = []
    try:
        for _ in range(choices):
            answers.append(await _answer(runtime, caller, single, tenant, profile, provider))
    except BaseException:  # the answers already made are not sent: close their runs now
        for answer in answers:
            if answer.background is not None:
                await answer.background()
        raise
    return merged_choices(answers)


async def _answer(
    runtime: Runtime,
    caller: Caller,
    body: ChatCompletionBody,
    tenant: str,
    profile: Profile | None,
    provider: Provider | None,
) -> JSONResponse | StreamingResponse:
    if profile is not None:
        return await _routed(runtime, caller, body, tenant, profile)
    assert provider is not None
    return await bypass(runtime, caller, body, tenant, provider)


def needs_of(body: ChatCompletionBody) -> dict[str, str]:
    """The capabilities the request needs of its arm (images, tools, reasoning effort)."""
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    return request_needs(
        messages, tools=bool(body.tools), reasoning=body.reasoning_effort is not None
    )


def merged_choices(answers: list[JSONResponse | StreamingResponse]) -> JSONResponse:
    """One ``chat.completion`` of ``n`` answers, each a run (and a logged request) of its own:
    choice ``i`` is answer ``i``; usage and cost add up; the first answer's id and headers;
    ``signalroute.choices`` holds each answer's own details. A failed answer is returned
    as it is (each run before it is logged and billed)."""
    # Each answer's run is closed once the merged answer is sent, as a single answer's is.
    closing = BackgroundTasks([a.background for a in answers if a.background is not None])
    bodies = []
    for answer in answers:
        assert isinstance(answer, JSONResponse)  # n > 1 is refused with stream
        if answer.status_code != 200:
            answer.background = closing
            return answer
        bodies.append(json.loads(bytes(answer.body)))
    first = bodies[0]
    merged = dict(first)
    merged["choices"] = [dict(b["choices"][0], index=i) for i, b in enumerate(bodies)]
    usage = {
        key: sum(b["usage"][key] for b in bodies)
        for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")
        if all(key in b["usage"] for b in bodies)
    }
    merged["usage"] = usage
    details = [b.get(EXTRA_FIELD, {}) for b in bodies]
    merged[EXTRA_FIELD] = dict(
        details[0], choices=details, cost_usd=sum(d.get("cost_usd", 0.0) for d in details)
    )
    headers = {k: v for k, v in answers[0].headers.items() if k.startswith("x-signalroute")}
    headers["x-signalroute-cost-usd"] = f"{merged[EXTRA_FIELD]['cost_usd']:.8f}"
    return FastJSONResponse(merged, headers=headers, background=closing)


# --- routed ------------------------------------------------------------------------------


def profile_request(
    runtime: Runtime,
    body: ChatCompletionBody,
    tenant: str,
    profile: Profile,
    *,
    stream: bool,
    api_key_id: str | None = None,
) -> RouteRequest:
    """The core request for a profile: its arms as a constraint, its objective and stages."""
    pool = runtime.pool
    objective = profile.objective or pool.objective
    sent = body.sent()
    limits = body.constraints
    constraints = Constraints(
        max_cost_usd=limits.max_cost_usd if limits else None,
        max_latency_ms=limits.max_latency_ms if limits else None,
        capabilities=frozenset(limits.capabilities if limits else ()),
        arms=frozenset(profile.arms) if profile.arms else None,
        needs=needs_of(body),
    )
    return RouteRequest(
        messages=tuple(m.model_dump(exclude_none=True) for m in body.messages),
        weights=RewardWeights(
            lambda_cost=objective.lambda_cost,
            lambda_latency=objective.lambda_latency,
            cost_ref_usd=runtime.settings.cost_ref_usd,
            latency_ref_ms=objective.latency_reference_ms(runtime.settings.latency_ref_ms),
        ),
        tenant=tenant,
        api_key_id=api_key_id,
        user=body.user,
        session=body.session,
        response_format=body.response_format,
        constraints=constraints,
        max_tokens=body.token_limit,
        temperature=body.temperature,
        stream=stream,
        stages=StageOptions(**profile.stage_values(pool.stages)),
        hints=body.hints or {},
        params=forwarded_params(sent),
        fields=sent,
        stickiness=profile.conversation,
        switch_cost=profile.switch_cost,
        tools=tuple(body.tools) if body.tools else None,
        tool_choice=body.tool_choice,
    )


async def _routed(
    runtime: Runtime, caller: Caller, body: ChatCompletionBody, tenant: str, profile: Profile
) -> JSONResponse | StreamingResponse:
    if body.stream and profile.stream == "live":
        return await _routed_live(runtime, caller, body, tenant, profile)
    request = profile_request(
        runtime, body, tenant, profile, stream=False, api_key_id=caller.key_id
    )
    run = runtime.router.run(request)
    try:
        final = await final_event(run)
        if final is None:
            raise ProviderError("the router ended without an answer", arm="")
        await settle(runtime, caller, final)
    except BaseException:
        await run.aclose()
        raise
    # The run is closed once the answer is sent: what it leaves to do follows the answer.
    closing = BackgroundTask(close_run, run)
    if isinstance(final, RouteFailed):
        return _failed_response(final, body.model, closing)
    headers = _result_headers(final, body.model)
    extra = _routed_extra(request, final, body.model)
    usage = routed_usage(request, final).as_json(final.cost_usd)
    completion_id = f"{COMPLETION_ID_PREFIX}{final.request_id}"
    finish = finish_reason(final)
    if not body.stream:
        return FastJSONResponse(
            completion_body(
                completion_id, final.model, final.output, finish, usage, extra, final.tool_calls
            ),
            headers=headers,
            background=closing,
        )

    async def events() -> AsyncIterator[str]:
        yield chunk(completion_id, final.model, {"role": "assistant", "content": ""})
        for piece in text_pieces(final.output) if final.output else ():
            yield chunk(completion_id, final.model, {"content": piece})
        for call in tool_call_deltas(final.tool_calls):
            yield tool_call_chunk(completion_id, final.model, call)
        yield chunk(completion_id, final.model, {}, finish, extra)
        if body.include_usage:
            yield usage_chunk(completion_id, final.model, usage)
        yield DONE

    return StreamingResponse(
        events(), media_type="text/event-stream", headers=SSE_HEADERS | headers, background=closing
    )


async def _routed_live(
    runtime: Runtime, caller: Caller, body: ChatCompletionBody, tenant: str, profile: Profile
) -> JSONResponse | StreamingResponse:
    """Forward text as the router releases it; a replacement comes after a switch chunk."""
    request = replace(
        profile_request(runtime, body, tenant, profile, stream=True, api_key_id=caller.key_id),
        request_id=str(uuid.uuid4()),
    )
    events = runtime.router.run(request)
    first = await anext(events, None)  # validation errors (422) raise here, before the 200
    if isinstance(first, RouteFailed):
        await settle(runtime, caller, first)
        return _failed_response(first, body.model)
    completion_id = f"{COMPLETION_ID_PREFIX}{request.request_id}"
    model = body.model

    async def sse() -> AsyncIterator[str]:
        yield chunk(completion_id, model, {"role": "assistant", "content": ""})
        event: RouteEvent | None = first
        while event is not None:
            if isinstance(event, Delta):
                yield chunk(completion_id, model, {"content": event.text})
            elif isinstance(event, Switch):
                yield chunk(completion_id, model, {}, None, {"switch": asdict(event)})
            elif isinstance(event, RouteFailed):
                await settle(runtime, caller, event)
                await events.aclose()  # the run is over: closed here, not by the collector
                yield error_event(event.error.code, event.error.message)
                return
            else:
                await settle(runtime, caller, event)
                await events.aclose()
                for call in tool_call_deltas(event.tool_calls):
                    yield tool_call_chunk(completion_id, event.model, call)
                extra = _routed_extra(request, event, model)
                yield chunk(completion_id, event.model, {}, finish_reason(event), extra)
                if body.include_usage:
                    usage = routed_usage(request, event)
                    yield usage_chunk(completion_id, event.model, usage.as_json(event.cost_usd))
                yield DONE
                return
            event = await anext(events, None)

    return StreamingResponse(
        sse(),
        media_type="text/event-stream",
        headers=SSE_HEADERS | {"x-signalroute-profile": body.model},
    )


def answering_decision(result: RouteResult) -> DecisionTrace | None:
    """The decision that put the answering arm on the answer (drawn or escalated to)."""
    wanted = (result.model, f"{ESCALATE_PREFIX}{result.model}")
    return next((d for d in reversed(result.decisions) if d.arm in wanted), None)


def _result_headers(result: RouteResult, profile_id: str) -> dict[str, str]:
    headers = {
        "x-signalroute-request-id": result.request_id,
        "x-signalroute-profile": profile_id,
        "x-signalroute-arm": result.model,
        "x-signalroute-cost-usd": f"{result.cost_usd:.8f}",
    }
    decision = answering_decision(result)
    if decision is not None:
        headers["x-signalroute-probability"] = f"{decision.probability:.6f}"
    return headers


FORMAT_FAILED = "format_failed"
"""The finish reason of an answer that fails the requested JSON format: every run missed
it, and this is the best answer obtained (``signalroute.format_error`` says why)."""


def finish_reason(result: RouteResult) -> str:
    """The answering call's own reason when it is not a plain stop (``length``,
    ``content_filter``, ``tool_calls``), else ``format_failed`` when the answer fails the
    requested format, else ``stop``."""
    if result.finish_reason not in (None, "stop"):
        return str(result.finish_reason)
    return FORMAT_FAILED if result.format_error is not None else "stop"


def routed_usage(request: RouteRequest, result: RouteResult) -> Usage:
    """The provider's counts for the answering call when it sent them, else estimates."""
    if result.prompt_tokens is not None and result.completion_tokens is not None:
        return Usage(result.prompt_tokens, result.completion_tokens)
    return estimated_usage(request.messages, result.output)


def _routed_extra(request: RouteRequest, result: RouteResult, profile_id: str) -> dict[str, Any]:
    decision = answering_decision(result)
    return {
        "request_id": result.request_id,
        "profile": profile_id,
        "arm": result.model,
        "probability": decision.probability if decision is not None else None,
        "cost_usd": result.cost_usd,
        "latency_ms": round(result.latency_ms, 2),
        "usage_estimated": result.prompt_tokens is None or result.completion_tokens is None,
        "format_error": result.format_error,
        "trace": result_body(result)["trace"],
    }


def _failed_response(
    failure: RouteFailed, profile_id: str, background: BackgroundTask | None = None
) -> JSONResponse:
    body = error_body(failure.error.code, failure.error.message)
    body["signalroute"] = {
        "request_id": failure.request_id,
        "profile": profile_id,
        "trace": {"decisions": [d.as_json() for d in failure.decisions]},
    }
    headers = {"x-signalroute-request-id": failure.request_id}
    if failure.decisions and all(d.outcome.startswith("cut") for d in failure.decisions):
        headers["x-should-retry"] = "false"  # the same request would be cut again
    return FastJSONResponse(
        body, status_code=failure.error.status_code, headers=headers, background=background
    )
