"""OpenAI chat-completion bodies and stream chunks, with signalroute's details beside them.

Routing details go in one extra top-level field, ``signalroute``, which OpenAI clients keep
as an unknown field (``completion.model_extra["signalroute"]`` in the Python client); every
field of the OpenAI schema keeps its meaning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.providers import FunctionCall, ToolCallDelta
from router.providers.openai_compat import estimate_tokens

EXTRA_FIELD = "signalroute"

COMPLETION_ID_PREFIX = "chatcmpl-"
"""A completion's id is this prefix and the logged request's id (``/requests/{id}`` takes
either)."""

SSE_HEADERS = {"cache-control": "no-cache"}
"""Headers of every streamed response (besides its content type)."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def as_json(self, cost_usd: float | None = None) -> dict[str, Any]:
        """OpenAI's usage object; with ``cost_usd``, signalroute's cost beside the counts."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if cost_usd is not None:
            usage["cost_usd"] = cost_usd
        return usage


def estimated_usage(messages: Sequence[Mapping[str, Any]], output: str) -> Usage:
    """Token counts estimated from text (4 characters a token), for answers whose provider
    counts are not at hand."""
    prompt = sum(estimate_tokens(_text(m.get("content"))) for m in messages)
    return Usage(prompt_tokens=prompt, completion_tokens=estimate_tokens(output))


def completion_body(
    completion_id: str,
    model: str,
    text: str,
    finish_reason: str,
    usage: Mapping[str, Any],
    extra: Mapping[str, Any],
    tool_calls: Sequence[FunctionCall] = (),
) -> dict[str, Any]:
    """A ``chat.completion`` object with ``extra`` as its ``signalroute`` field; a message
    with ``tool_calls`` and no text has ``content: null``, as OpenAI sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["content"] = text or None
        message["tool_calls"] = [call.as_json() for call in tool_calls]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": dict(usage),
        EXTRA_FIELD: dict(extra),
    }


def chunk(
    completion_id: str,
    model: str,
    delta: Mapping[str, Any],
    finish_reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """One ``chat.completion.chunk`` as a server-sent event."""
    payload: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish_reason}],
    }
    if extra is not None:
        payload[EXTRA_FIELD] = dict(extra)
    return sse(payload)


def tool_call_chunk(completion_id: str, model: str, delta: ToolCallDelta) -> str:
    """A chunk carrying one piece of a tool call (``delta.tool_calls``)."""
    return chunk(completion_id, model, {"tool_calls": [delta.as_json()]})


def usage_chunk(completion_id: str, model: str, usage: Mapping[str, Any]) -> str:
    """The last chunk OpenAI sends when ``stream_options.include_usage`` is set: no choices."""
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": dict(usage),
    }
    return sse(payload)


def error_event(code: str, message: str) -> str:
    """An error inside a stream, as OpenAI sends it (its Python client raises APIError)."""
    return sse({"error": {"code": code, "message": message, "type": code}})


def sse(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


DONE = "data: [DONE]\n\n"


def text_pieces(text: str, size: int = 64) -> list[str]:
    """``text`` in pieces of ``size`` characters, for streaming an answer already complete."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
