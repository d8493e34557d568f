"""Request bodies at the HTTP edge (pydantic stays here; the core uses frozen dataclasses)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ChatMessage(BaseModel):
    """An OpenAI chat message; content is text or a list of typed parts (text, image_url)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _parts_typed(
        cls, content: str | list[dict[str, Any]] | None
    ) -> str | list[dict[str, Any]] | None:
        if isinstance(content, list):
            for index, part in enumerate(content):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content part {index} has no 'type'")
        return content


def check_messages(messages: list[ChatMessage]) -> list[ChatMessage]:
    """At least one message, and at least one non-empty user message."""
    if not messages:
        raise ValueError("must hold at least one message")
    if not any(m.role == "user" and m.content for m in messages):
        raise ValueError("must hold a user message with non-empty content")
    return messages


class ChatCompletionBody(BaseModel):
    """``POST /v1/chat/completions``; unknown OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage]
    stream: bool = False
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    response_format: dict[str, Any] | None = None
    user: str | None = None

    @field_validator("messages")
    @classmethod
    def _messages(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        return check_messages(messages)
