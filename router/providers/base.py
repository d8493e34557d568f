"""The provider interface and the values that cross it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = Mapping[str, Any]
"""An OpenAI chat message: ``{"role": ..., "content": str | list[part]}``."""


@dataclass(frozen=True)
class ChatRequest:
    """What the router asks of a model; the model id comes from the arm."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: Mapping[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    """Other Chat Completions fields, sent as the caller gave them (``stop``, ``seed``,
    ``tools``, ...): ``router.api.openai_fields`` says which."""

    def body(self, model: str, *, stream: bool) -> dict[str, Any]:
        """The OpenAI chat-completions request body."""
        body: dict[str, Any] = {
            **self.params,
            "model": model,
            "messages": [dict(m) for m in self.messages],
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.response_format is not None:
            body["response_format"] = dict(self.response_format)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


@dataclass(frozen=True)
class RateLimit:
    """Rate-limit headroom a provider reported in its ``x-ratelimit-*`` headers."""

    remaining_requests: int | None = None
    limit_requests: int | None = None
    remaining_tokens: int | None = None
    limit_tokens: int | None = None

    @property
    def headroom(self) -> float | None:
        """Smallest remaining/limit fraction over requests and tokens; None when unreported."""
        fractions = [
            remaining / limit
            for remaining, limit in (
                (self.remaining_requests, self.limit_requests),
                (self.remaining_tokens, self.limit_tokens),
            )
            if remaining is not None and limit
        ]
        return min(fractions) if fractions else None


@dataclass(frozen=True)
class FunctionCall:
    """A tool call a model made, as OpenAI sends it in ``message.tool_calls``."""

    id: str
    name: str
    arguments: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Completion:
    """A finished model answer with what it cost and how long it took."""

    arm: str
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    first_token_ms: float | None = None
    rate_limit: RateLimit = field(default_factory=RateLimit)
    usage_reported: bool = False
    """The token counts are the provider's own (else estimated from the text)."""
    tool_calls: tuple[FunctionCall, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delta:
    """A piece of streamed text."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a streamed tool call, as OpenAI streams it: the call's ``index``; its
    ``id`` and function ``name`` on the call's first piece; then pieces of ``arguments``."""

    index: int
    id: str | None
    name: str | None
    arguments: str

    def as_json(self) -> dict[str, Any]:
        """The ``delta.tool_calls`` entry of a chunk."""
        if self.id is None and self.name is None:
            return {"index": self.index, "function": {"arguments": self.arguments}}
        function: dict[str, Any] = {"arguments": self.arguments}
        if self.name is not None:
            function = {"name": self.name, **function}
        entry: dict[str, Any] = {"index": self.index}
        if self.id is not None:
            entry["id"] = self.id
        return {**entry, "type": "function", "function": function}


def tool_call_deltas(calls: tuple[FunctionCall, ...], piece_chars: int = 64) -> list[ToolCallDelta]:
    """Complete calls as stream pieces: each call's opening (id, name), then its arguments."""
    deltas: list[ToolCallDelta] = []
    for index, call in enumerate(calls):
        deltas.append(ToolCallDelta(index, call.id, call.name, ""))
        deltas += [
            ToolCallDelta(index, None, None, call.arguments[start : start + piece_chars])
            for start in range(0, len(call.arguments), piece_chars)
        ]
    return deltas


StreamEvent = Delta | ToolCallDelta | Completion
"""A stream yields ``Delta`` pieces and ``ToolCallDelta`` pieces, then exactly one
``Completion`` when it ends cleanly."""


class Provider(Protocol):
    """A model behind an arm. Failures raise ``features.errors.ProviderError`` subclasses."""

    @property
    def arm_name(self) -> str: ...

    async def complete(self, request: ChatRequest) -> Completion: ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]: ...
