"""A request to a named arm: routing bypassed, the request still logged and its cost counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from features.errors import ProviderError
from router.api.openai_fields import forwarded_params
from router.api.openai_format import (
    COMPLETION_ID_PREFIX,
    DONE,
    SSE_HEADERS,
    Usage,
    chunk,
    completion_body,
    error_event,
    tool_call_chunk,
    usage_chunk,
)
from router.api.schemas import ChatCompletionBody
from router.auth.caller import Caller
from router.conversations import turn_key
from router.lifecycle.prompts import with_format_instruction
from router.lifecycle.state import JSON_CAPABILITY, wants_json
from router.providers import ChatRequest, Completion, Delta, Provider, ToolCallDelta
from router.providers.base import Message
from router.runtime import Runtime
from store import requests as request_log

ABANDONED = "abandoned: the client left before the answer was delivered"


async def bypass(
    runtime: Runtime, caller: Caller, body: ChatCompletionBody, tenant: str, provider: Provider
) -> JSONResponse | StreamingResponse:
    """Send the request to the arm ``model`` names; log it and count its cost either way."""
    sent = body.sent()
    arm = body.model
    sent_messages = tuple(m.model_dump(exclude_none=True) for m in body.messages)
    messages: tuple[Message, ...] = sent_messages
    response_format = body.response_format
    if wants_json(response_format) and JSON_CAPABILITY not in runtime.pool.arm(arm).capabilities:
        assert response_format is not None
        messages = with_format_instruction(messages, response_format)
        response_format = None
    request = ChatRequest(
        messages=messages,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        response_format=response_format,
        params=forwarded_params(sent),
    )
    async with runtime.database.connection() as conn:
        record = await request_log.insert_request(
            conn,
            tenant=tenant,
            user_id=body.user,
            session_id=body.session,
            messages=list(sent_messages),
            params={
                "model": arm,
                "stream": body.stream,
                "routing": "bypassed",
                "hints": body.hints or {},
                "fields": sent,
                "turn_key": turn_key(sent_messages),
            },
            api_key_id=caller.key_id,
        )
    request_id = str(record.id)
    completion_id = f"{COMPLETION_ID_PREFIX}{request_id}"
    headers = {"x-signalroute-request-id": request_id, "x-signalroute-arm": arm}
    extra = {"request_id": request_id, "arm": arm, "routing": "bypassed"}

    async def finish(completion: Completion | None, error: str | None) -> None:
        async with runtime.database.connection() as conn:
            if completion is None:
                await request_log.fail_request(conn, request_id, error=error or "unknown error")
                return
            await request_log.complete_request(
                conn,
                request_id,
                output=completion.text,
                model=completion.arm,
                cost_usd=completion.cost_usd,
                latency_ms=completion.latency_ms,
            )
        runtime.spend.add(tenant, body.session, completion.cost_usd)

    def answered(completion: Completion) -> dict[str, Any]:
        return extra | {
            "cost_usd": completion.cost_usd,
            "usage_estimated": not completion.usage_reported,
        }

    def usage_of(completion: Completion) -> dict[str, Any]:
        counts = Usage(completion.prompt_tokens, completion.completion_tokens)
        return counts.as_json(completion.cost_usd)

    if not body.stream:
        try:
            completion = await provider.complete(request)
        except ProviderError as exc:
            await finish(None, exc.message)
            raise
        await finish(completion, None)
        headers["x-signalroute-cost-usd"] = f"{completion.cost_usd:.8f}"
        return JSONResponse(
            completion_body(
                completion_id,
                arm,
                completion.text,
                completion.finish_reason or "stop",
                usage_of(completion),
                answered(completion),
                completion.tool_calls,
            ),
            headers=headers,
        )

    async def events() -> AsyncIterator[str]:
        finished = False
        try:
            yield chunk(completion_id, arm, {"role": "assistant", "content": ""})
            completion: Completion | None = None
            try:
                async for event in provider.stream(request):
                    if isinstance(event, Delta):
                        yield chunk(completion_id, arm, {"content": event.text})
                    elif isinstance(event, ToolCallDelta):
                        yield tool_call_chunk(completion_id, arm, event)
                    else:
                        completion = event
            except ProviderError as exc:
                finished = True
                await finish(None, exc.message)
                yield error_event(exc.code, exc.message)
                return
            assert completion is not None
            finished = True
            await finish(completion, None)
            yield chunk(
                completion_id,
                arm,
                {},
                completion.finish_reason or "stop",
                answered(completion),
            )
            if body.include_usage:
                yield usage_chunk(completion_id, arm, usage_of(completion))
            yield DONE
        finally:
            if not finished:
                await asyncio.shield(finish(None, ABANDONED))

    return StreamingResponse(
        events(), media_type="text/event-stream", headers=SSE_HEADERS | headers
    )
