"""The OpenAI chat-completions shapes the replay pool reads and writes.

Requests are validated with pydantic (extra OpenAI fields are accepted and ignored); responses
are built as plain dicts from one frozen ``Answer``, so a streamed and a non-streamed answer
always carry the same content and usage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from router.providers.base import FunctionCall


class ContentPart(BaseModel):
    """One part of a list-valued message content; only ``text`` parts carry prompt text."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text: string content, or its text parts joined by newlines."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(
            part.text for part in self.content if part.type == "text" and part.text is not None
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """A chat-completions request body. ``response_format``, ``stop`` and the token caps
    shape the replayed answer; ``temperature`` and any other OpenAI field are accepted and
    do not change it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = None
    response_format: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    def prompt_text(self) -> str:
        """The text of the last user message; ValueError when there is no user message."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        raise ValueError("messages: no message with role 'user'")

    def before_stop(self, text: str) -> str:
        """``text`` up to the first of the ``stop`` sequences (as OpenAI returns it: without
        the sequence)."""
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        cuts = [text.find(s) for s in stops if s and s in text]
        return text[: min(cuts)] if cuts else text

    def tool_names(self) -> tuple[str, ...]:
        """The names of the functions offered in ``tools``, in order."""
        names = []
        for tool in self.tools or ():
            function = tool.get("function")
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
        return tuple(names)

    def token_limit(self) -> int | None:
        """The completion-token cap (``max_completion_tokens`` wins over ``max_tokens``)."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` at four characters a token (the pool has no tokenizer)."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts (estimated) and the cost recorded for the answer."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    def as_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost_usd": self.cost_usd,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """One chat completion, ready to be sent whole or streamed: text, or ``tool_calls``
    (then ``content`` is empty and sent as null)."""

    completion_id: str
    created: int
    model: str
    content: str
    finish_reason: str
    usage: Usage
    tool_calls: tuple[FunctionCall, ...] = ()

    def message(self) -> dict[str, Any]:
        """The assistant message: ``content``, or null and ``tool_calls``."""
        if not self.tool_calls:
            return {"role": "assistant", "content": self.content}
        return {
            "role": "assistant",
            "content": self.content or None,
            "tool_calls": [call.as_json() for call in self.tool_calls],
        }

    def completion(self) -> dict[str, Any]:
        """The ``chat.completion`` body."""
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "message": self.message(), "finish_reason": self.finish_reason}
            ],
            "usage": self.usage.as_json(),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """A ``chat.completion.chunk`` with one choice."""
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def usage_chunk(self) -> dict[str, Any]:
        """The last chunk when ``stream_options.include_usage`` is set: no choices, usage."""
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": self.usage.as_json(),
        }


def error_body(message: str, *, type_: str, code: str | None) -> dict[str, Any]:
    """An OpenAI error body."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
