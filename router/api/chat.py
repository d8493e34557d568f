"""``/v1/chat/completions`` and ``/v1/models``: the OpenAI-compatible surface.

A request whose ``model`` names an arm of the pool goes straight to that arm (routing
bypassed); it is still logged in the store like every accepted request.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse

from features.errors import NotFoundError, ProviderError
from router.api.deps import get_runtime
from router.api.schemas import ChatCompletionBody
from router.providers import ChatRequest, Completion, Delta
from router.runtime import Runtime
from store import requests as request_log

routes = APIRouter(tags=["openai"])


def _chat_request(body: ChatCompletionBody) -> ChatRequest:
    return ChatRequest(
        messages=tuple(m.model_dump(exclude_none=True) for m in body.messages),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        response_format=body.response_format,
    )


def _completion_body(request_id: str, model: str, completion: Completion) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "finish_reason": completion.finish_reason or "stop",
            }
        ],
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            "cost_usd": completion.cost_usd,
        },
    }


def _chunk(request_id: str, model: str, delta: dict[str, Any], finish: str | None) -> str:
    payload = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n"


@routes.get("/v1/models")
async def list_models(runtime: Annotated[Runtime, Depends(get_runtime)]) -> dict[str, Any]:
    """The arms of the pool, as OpenAI model objects."""
    return {
        "object": "list",
        "data": [
            {"id": arm.name, "object": "model", "created": 0, "owned_by": "signalroute"}
            for arm in runtime.pool.arms
        ],
    }


@routes.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionBody, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> JSONResponse | StreamingResponse:
    """Send the request to the arm that ``model`` names; log it either way it ends."""
    provider = runtime.providers.get(body.model)
    if provider is None:
        known = ", ".join(runtime.pool.names)
        raise NotFoundError(f"unknown model {body.model!r}; this pool serves: {known}")
    request = _chat_request(body)
    request_id = str(uuid.uuid4())
    async with runtime.database.connection() as conn:
        await request_log.insert_request(
            conn,
            request_id=request_id,
            tenant="default",
            user_id=body.user,
            session_id=None,
            messages=[dict(m) for m in request.messages],
            params={"model": body.model, "stream": body.stream, "routing": "bypassed"},
        )
    headers = {"x-signalroute-request-id": request_id, "x-signalroute-arm": body.model}

    async def finish(completion: Completion | None, error: str | None) -> None:
        async with runtime.database.connection() as conn:
            if completion is not None:
                await request_log.complete_request(
                    conn,
                    request_id,
                    output=completion.text,
                    model=completion.arm,
                    cost_usd=completion.cost_usd,
                    latency_ms=completion.latency_ms,
                )
            else:
                await request_log.fail_request(conn, request_id, error=error or "unknown error")

    if not body.stream:
        try:
            completion = await provider.complete(request)
        except ProviderError as exc:
            await finish(None, exc.message)
            raise
        await finish(completion, None)
        headers["x-signalroute-cost-usd"] = f"{completion.cost_usd:.8f}"
        return JSONResponse(_completion_body(request_id, body.model, completion), headers=headers)

    async def events() -> AsyncIterator[str]:
        yield _chunk(request_id, body.model, {"role": "assistant", "content": ""}, None)
        completion: Completion | None = None
        try:
            async for event in provider.stream(request):
                if isinstance(event, Delta):
                    yield _chunk(request_id, body.model, {"content": event.text}, None)
                else:
                    completion = event
        except ProviderError as exc:
            await finish(None, exc.message)
            error = {"error": {"code": exc.code, "message": exc.message}}
            yield f"data: {json.dumps(error)}\n\n"
            return
        await finish(completion, None)
        assert completion is not None
        yield _chunk(request_id, body.model, {}, completion.finish_reason or "stop")
        usage = _completion_body(request_id, body.model, completion)["usage"]
        final = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion.chunk",
            "model": body.model,
            "choices": [],
            "usage": usage,
        }
        yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
