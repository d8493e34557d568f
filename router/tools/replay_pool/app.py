"""``create_replay_app``: the replay pool over OpenAI-compatible HTTP.

Routes: ``GET /healthz``, ``GET /v1/models``, ``POST /v1/chat/completions``; the RouterBench
models, the judge and, when given, the tool-calling arms (``tool_arms``). Every valid
chat request draws one fault from the seeded plan (a header ``x-replay-fault`` can force it),
waits ``latency_ms``, then fails (500, or 429 with Retry-After), stalls, is cut, or answers.
A model with a latency profile waits its drawn time to first token instead and streams at its
drawn pace, and its degradation episodes may fail the request or slow it (``conditions``).
Invalid requests (400, 404) draw nothing. Successful answers carry ``x-replay-match``,
``x-replay-prompt-id``, ``x-replay-similarity``, ``x-replay-cost-usd`` and ``x-replay-fault``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from features.errors import ConfigError, NotFoundError, RequestError
from router.settings import ReplaySettings
from router.tools.replay_pool.conditions import SystemPlan
from router.tools.replay_pool.content_faults import (
    CONTENT_FAULT_HEADER,
    ContentFault,
    apply_content_fault,
    parse_content_fault,
)
from router.tools.replay_pool.dataset import ReplayDataset, load_routerbench
from router.tools.replay_pool.faults import (
    FAULT_HEADER,
    Fault,
    FaultKind,
    FaultPlan,
    parse_fault_header,
)
from router.tools.replay_pool.judge import JUDGE_MODEL, ReplayJudge
from router.tools.replay_pool.matching import PromptMatcher
from router.tools.replay_pool.protocol import ChatCompletionRequest, error_body, estimate_tokens
from router.tools.replay_pool.replayer import Replay, Replayer
from router.tools.replay_pool.streaming import cut_body, quiet_stream_cuts, stream_answer
from router.tools.replay_pool.tool_arms import ToolArms

OWNER = "replay"


def _error(status: int, message: str, *, type_: str, code: str) -> JSONResponse:
    return JSONResponse(error_body(message, type_=type_, code=code), status_code=status)


def _invalid(message: str) -> JSONResponse:
    return _error(400, message, type_="invalid_request_error", code="invalid_request")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where or 'body'}: {error['msg']}")
    return "invalid chat-completions request: " + "; ".join(problems)


def _replay_headers(replay: Replay, fault: Fault) -> dict[str, str]:
    return {
        "x-replay-match": replay.match.kind,
        "x-replay-prompt-id": replay.match.record.prompt_id,
        "x-replay-similarity": f"{replay.match.similarity:.6f}",
        "x-replay-cost-usd": repr(replay.answer.usage.cost_usd),
        FAULT_HEADER: fault.kind,
    }


def _fault_response(fault: Fault, extra: Mapping[str, str]) -> JSONResponse | None:
    """The error response of an ``error`` or ``rate_limit`` fault; None for other kinds."""
    headers: dict[str, str] = {**extra, FAULT_HEADER: fault.kind}
    if fault.kind == "error":
        body = error_body(
            "The replay server had an error while processing your request (injected fault).",
            type_="server_error",
            code="replay_fault",
        )
        return JSONResponse(body, status_code=500, headers=headers)
    if fault.kind == "rate_limit":
        headers["retry-after"] = str(math.ceil(fault.retry_after_s))
        headers["retry-after-ms"] = str(round(fault.retry_after_s * 1000))
        body = error_body(
            f"Rate limit reached (injected fault); retry after {fault.retry_after_s:g}s.",
            type_="rate_limit_error",
            code="rate_limit_exceeded",
        )
        return JSONResponse(body, status_code=429, headers=headers)
    return None


def faults_by_model(
    configured: dict[str, str], models: tuple[str, ...]
) -> tuple[dict[str, ContentFault], dict[str, FaultKind]]:
    """Validate ``SIGNALROUTE_REPLAY_MODEL_FAULTS``: known models, each with a content fault
    or a transport fault (``error``, ``rate_limit``, ``stall``, ``cut``)."""
    content: dict[str, ContentFault] = {}
    transport: dict[str, FaultKind] = {}
    for model, name in configured.items():
        if model not in models:
            raise ConfigError(
                f"SIGNALROUTE_REPLAY_MODEL_FAULTS names {model!r}, which the replay pool does "
                f"not serve; served: {', '.join(models)}"
            )
        try:
            kind = parse_fault_header(name)
        except ValueError:
            kind = None
        if kind is not None:
            transport[model] = kind
            continue
        try:
            fault = parse_content_fault(name)
        except ValueError as exc:
            raise ConfigError(
                f"SIGNALROUTE_REPLAY_MODEL_FAULTS[{model!r}]: {exc} (or a transport fault: "
                "error, rate_limit, stall, cut)"
            ) from None
        if fault is not None:
            content[model] = fault
    return content, transport


def with_content_fault(replay: Replay, fault: ContentFault) -> Replay:
    """The replay with its answer's text rewritten by ``fault`` (usage recounted, cost kept)."""
    answer = replay.answer
    content = apply_content_fault(answer.content, fault)
    usage = replace(answer.usage, completion_tokens=estimate_tokens(content))
    return replace(replay, answer=replace(answer, content=content, usage=usage))


def create_replay_app(
    settings: ReplaySettings,
    dataset: ReplayDataset | None = None,
    rng: np.random.Generator | None = None,
    *,
    matcher: PromptMatcher | None = None,
    judge_accuracy: float | None = None,
    tool_arms: ToolArms | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The replay pool as an ASGI app, ready to serve (it needs no lifespan, so it can be
    mounted in another app).

    Without ``dataset`` the RouterBench data is loaded from ``settings.data_path()`` now
    (ConfigError when it is missing). Without ``rng`` faults are drawn from
    ``numpy.random.default_rng(settings.seed)``. A ``matcher`` built over the same dataset can
    be shared between apps (building one takes about half a second). ``tool_arms`` adds the
    tool-calling arms (BFCL's native function-calling configurations). Latency profiles and
    degradation episodes (``conditions``) run on ``clock`` (seconds) and draw from a Generator
    seeded with ``[settings.seed, 1]``. ``app.state.models`` lists every model id served.
    Installs a filter on the ``uvicorn.error`` logger that drops the traceback of each
    injected cut.
    """
    if dataset is None:
        dataset = matcher.dataset if matcher is not None else load_routerbench(settings.data_path())
    if matcher is None:
        matcher = PromptMatcher(dataset)
    elif matcher.dataset is not dataset:
        raise ValueError("matcher was built over another dataset")
    accuracy = settings.judge_accuracy if judge_accuracy is None else judge_accuracy
    judge = ReplayJudge(matcher, models=dataset.models, accuracy=accuracy, seed=settings.seed)
    replayer = Replayer(dataset, matcher, judge)
    tool_models = tool_arms.models if tool_arms is not None else ()
    models = (*replayer.models, *tool_models)
    recorded = (*dataset.models, *tool_models)
    model_faults, model_transport_faults = faults_by_model(settings.model_faults, recorded)
    faults = FaultPlan(settings, rng if rng is not None else np.random.default_rng(settings.seed))
    system = SystemPlan(
        settings.profiles,
        settings.episodes,
        np.random.default_rng([settings.seed, 1]),
        clock=clock,
    )
    quiet_stream_cuts()

    app = FastAPI(
        title="signalroute replay pool",
        summary="Recorded RouterBench answers (and BFCL tool calls) served as OpenAI-compatible "
        "models.",
        version="0.1.0",
    )
    app.state.models = models
    app.state.system = system

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        """The pool is up; how much it replays."""
        prompts = len(dataset) + (len(tool_arms) if tool_arms is not None else 0)
        return {"status": "ok", "prompts": prompts, "models": len(models)}

    @app.get("/v1/models")
    async def list_models() -> dict[str, object]:
        """The served model ids, in the OpenAI list format."""
        data = [{"id": model, "object": "model", "owned_by": OWNER} for model in models]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        """Replay the requested model's recorded answer, with this request's fault."""
        try:
            chat = ChatCompletionRequest.model_validate_json(await request.body())
            forced = parse_fault_header(request.headers.get(FAULT_HEADER))
            forced_content = parse_content_fault(request.headers.get(CONTENT_FAULT_HEADER))
        except ValidationError as exc:
            return _invalid(_describe(exc))
        except ValueError as exc:
            return _invalid(str(exc))
        completion_id = f"chatcmpl-replay-{uuid.uuid4().hex[:24]}"
        answerer = tool_arms if tool_arms is not None and chat.model in tool_models else replayer
        try:
            replay = answerer.answer(chat, completion_id=completion_id, created=int(time.time()))
        except NotFoundError as exc:
            return _error(404, exc.message, type_="invalid_request_error", code="model_not_found")
        except RequestError as exc:
            return _invalid(exc.message)

        content_fault = forced_content or model_faults.get(chat.model)
        if content_fault is not None and chat.model != JUDGE_MODEL and not replay.answer.tool_calls:
            replay = with_content_fault(replay, content_fault)
        fault = faults.draw(forced or model_transport_faults.get(chat.model))
        chunks_per_s = settings.stream_chunks_per_s
        extra: dict[str, str] = {}
        pacing_s = 0.0
        if system.active:
            timing = system.draw(chat.model, fault.latency_ms)
            extra = dict(timing.headers)
            kind = fault.kind if fault.kind != "none" or timing.failure is None else timing.failure
            fault = replace(fault, kind=kind, latency_ms=timing.ttft_ms)
            if timing.tokens_per_s is not None:
                # a token is about 4 characters (``estimate_tokens``)
                chunks_per_s = timing.tokens_per_s * 4.0 / settings.stream_chunk_chars
                pacing_s = replay.answer.usage.completion_tokens / timing.tokens_per_s
        if fault.latency_ms > 0:
            await asyncio.sleep(fault.latency_ms / 1000.0)
        failed = _fault_response(fault, extra)
        if failed is not None:
            return failed
        headers = {**extra, **_replay_headers(replay, fault)}
        if chat.stream:
            body = stream_answer(
                replay.answer,
                fault,
                chunk_chars=settings.stream_chunk_chars,
                chunks_per_s=chunks_per_s,
                include_usage=chat.include_usage,
            )
            headers["cache-control"] = "no-cache"
            return StreamingResponse(body, media_type="text/event-stream", headers=headers)
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall_ms / 1000.0)
        if pacing_s > 0:  # a non-streamed answer arrives once it is all generated
            await asyncio.sleep(pacing_s)
        payload = json.dumps(replay.answer.completion()).encode()
        if fault.kind == "cut":
            cut = cut_body(payload, fault.at_fraction)
            return StreamingResponse(cut, media_type="application/json", headers=headers)
        return Response(payload, media_type="application/json", headers=headers)

    return app
