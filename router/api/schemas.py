"""Request bodies at the HTTP edge (pydantic stays here; the core uses frozen dataclasses)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.query import check_hints as query_hints


def unstorable(value: Any, path: str = "body") -> str | None:
    """Where ``value`` holds a string the store cannot keep, and why; None when it has none.

    Postgres text and JSON reject NUL characters, and UTF-8 has no unpaired surrogates
    (JSON can spell both as escapes): such a body would otherwise fail only when logged.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path}: contains a NUL character (\\u0000), which cannot be stored"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"{path}: contains an unpaired UTF-16 surrogate, which is not text"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable(key, f"{path} key") or unstorable(item, f"{path}.{key}")
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = unstorable(item, f"{path}.{index}")
            if problem:
                return problem
    return None


class StorableBody(BaseModel):
    """A request body whose every string can be logged (see ``unstorable``)."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = unstorable(data)
        if problem is not None:
            raise ValueError(problem.removeprefix("body."))
        return data


def check_part(index: int, part: dict[str, Any]) -> None:
    """A content part has a string ``type``; its ``text`` is a string (required for text
    parts); an ``image_url`` part has ``image_url.url``."""
    kind = part.get("type")
    if not isinstance(kind, str):
        raise ValueError(f"content part {index} has no 'type'")
    if ("text" in part or kind == "text") and not isinstance(part.get("text"), str):
        raise ValueError(f"content part {index} ({kind}) needs 'text' as a string")
    if kind == "image_url":
        image = part.get("image_url")
        if not (isinstance(image, dict) and isinstance(image.get("url"), str)):
            raise ValueError(f"content part {index} (image_url) needs 'image_url': {{'url': ...}}")


class ChatMessage(BaseModel):
    """An OpenAI chat message; content is text or a list of typed parts (text, image_url)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _parts_typed(
        cls, content: str | list[dict[str, Any]] | None
    ) -> str | list[dict[str, Any]] | None:
        if isinstance(content, list):
            for index, part in enumerate(content):
                check_part(index, part)
        return content


def check_messages(messages: list[ChatMessage]) -> list[ChatMessage]:
    """At least one message, and at least one non-empty user message."""
    if not messages:
        raise ValueError("must hold at least one message")
    if not any(m.role == "user" and m.content for m in messages):
        raise ValueError("must hold a user message with non-empty content")
    return messages


def check_response_format(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """An OpenAI response format: text, json_object, or json_schema with its schema."""
    if value is None:
        return None
    kind = value.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise ValueError("type must be one of text, json_object, json_schema")
    if kind == "json_schema" and not isinstance(value.get("json_schema"), dict):
        raise ValueError("a json_schema response format needs a 'json_schema' object")
    return value


def check_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Each tool is ``{"type": "function", "function": {"name": ..., "parameters"?: {...}}}``
    with a name of letters, digits, ``_`` and ``-`` (as OpenAI requires), names unique."""
    if tools is None:
        return None
    names: list[str] = []
    for index, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise ValueError(f"tool {index} must be {{'type': 'function', 'function': {{...}}}}")
        name = function.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ValueError(f"tool {index} needs a function name of 1-64 letters, digits, _ or -")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ValueError(f"tool {index} ({name}): parameters must be a JSON Schema object")
        names.append(name)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"function names must be unique; repeated: {', '.join(repeated)}")
    return tools


def check_hints(hints: dict[str, str] | None) -> dict[str, str] | None:
    """Hints as ``features.query.check_hints`` accepts them (the rule lives with the feature)."""
    return None if hints is None else query_hints(hints)


HINTS_DOC = (
    "signalroute's: descriptors of the request the routing policies learn from, such as "
    '{"task": "sql"} (stable categories, not ids)'
)


class ConstraintsBody(BaseModel):
    """Hard limits: arms that break them are masked (``422 no_eligible_arm`` when none is
    left, with each arm's reason)."""

    model_config = ConfigDict(extra="forbid")

    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Masks arms whose estimated cost is higher (USD)."
    )
    max_latency_ms: float | None = Field(
        default=None, gt=0, description="Masks arms whose latency p95 is higher."
    )
    capabilities: list[str] = Field(
        default_factory=list, description="Masks arms without every one of these capabilities."
    )


class ChatCompletionBody(StorableBody):
    """``POST /v1/chat/completions``. Fields are typed here; what the router does with each
    (forward, use, refuse) is ``router.api.openai_fields``, which also refuses fields it
    does not know (they are kept as extras until then)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage]
    stream: bool = False
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    store: bool | None = None
    stream_options: dict[str, Any] | None = None
    constraints: ConstraintsBody | None = None
    """signalroute's: limits that mask arms, as on ``/route-and-run``."""
    tenant: str | None = Field(default=None, min_length=1, max_length=200)
    """signalroute's: the tenant in local mode (with API keys, the key's tenant, or 403)."""
    session: str | None = Field(default=None, min_length=1, max_length=200)
    """signalroute's: the session whose spend counts against the session budget."""
    hints: dict[str, str] | None = Field(default=None, description=HINTS_DOC)

    @field_validator("messages")
    @classmethod
    def _messages(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        return check_messages(messages)

    @field_validator("hints")
    @classmethod
    def _hints(cls, hints: dict[str, str] | None) -> dict[str, str] | None:
        return check_hints(hints)

    @field_validator("response_format")
    @classmethod
    def _format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_response_format(value)

    @field_validator("tools")
    @classmethod
    def _tools(cls, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return check_tools(tools)

    @property
    def token_limit(self) -> int | None:
        """The completion-token cap, whichever of the two names set it."""
        return self.max_completion_tokens or self.max_tokens

    def sent(self) -> dict[str, Any]:
        """The fields the caller set, as parsed (extras included), ``messages`` aside."""
        return self.model_dump(exclude_unset=True, exclude={"messages"})

    @property
    def include_usage(self) -> bool:
        """Whether the stream ends with a usage chunk (``stream_options.include_usage``)."""
        return bool((self.stream_options or {}).get("include_usage"))


class ObjectiveBody(BaseModel):
    """Per-request reward weights; each replaces the pool's (or the profile's) of the same
    name."""

    model_config = ConfigDict(extra="forbid")

    lambda_cost: float | None = Field(default=None, ge=0)
    lambda_latency: float | None = Field(default=None, ge=0)


class StagesBody(BaseModel):
    """Per-request overrides of the pool's lifecycle options; each field means what the pool
    file's ``stages`` option of the same name means."""

    model_config = ConfigDict(extra="forbid")

    in_generation: bool | None = None
    escalation: bool | None = None
    components: bool | None = None
    judge: Literal["always", "on_doubt", "sampled", "never", "learned"] | None = None
    judge_rule: Literal["always", "on_doubt"] | None = None
    judge_sample_rate: float | None = Field(default=None, ge=0, le=1)
    holdback_chars: int | None = Field(default=None, ge=0, le=100_000)
    stall_ms: float | None = Field(default=None, gt=0)
    max_switches: int | None = Field(default=None, ge=0, le=10)
    max_escalations: int | None = Field(default=None, ge=1, le=5)
    escalation_ladder: bool | None = None
    escalation_context: Literal["answer", "reasons"] | None = None
    judge_components: bool | None = None


class ValidatorsBody(BaseModel):
    """Checks the answer must pass (besides the requested response format)."""

    model_config = ConfigDict(extra="forbid")

    regex: str | None = Field(
        default=None, min_length=1, max_length=2000, description="The answer must match it."
    )
    min_chars: int | None = Field(default=None, ge=0, description="Shortest answer that passes.")
    max_chars: int | None = Field(default=None, gt=0, description="Longest answer that passes.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


RUN_FIELDS = ("temperature", "stream", "stages", "validators")
"""The fields of ``/route-and-run`` about running the model, which ``/route`` does not take."""


class RouteBody(StorableBody):
    """``POST /route``: what the router decides from (the fields of ``/route-and-run`` that
    do not concern running the model). Unknown fields are rejected, so typos do not pass
    silently."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(description="The conversation, as OpenAI's.")
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Your end user's id: the historical signals look at this user's past too.",
    )
    tenant: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Local mode only (default 'default'); with API keys the key decides it.",
    )
    session: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Counted against the session budget; keeps a conversation on its arm.",
    )
    response_format: dict[str, Any] | None = Field(
        default=None,
        description="OpenAI's JSON mode or JSON schema; the answer is checked (on /route: "
        "a query signal).",
    )
    constraints: ConstraintsBody | None = None
    objective: ObjectiveBody | None = None
    max_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Forwarded to the arm (on /route: the cap you will ask for); arms whose "
        "context window cannot hold it are masked.",
    )
    hints: dict[str, str] | None = Field(default=None, description=HINTS_DOC)

    @model_validator(mode="before")
    @classmethod
    def _decides_only(cls, data: Any) -> Any:
        """On ``/route`` itself, the run's fields get a message saying why they do not fit."""
        if cls is RouteBody and isinstance(data, dict):
            given = [name for name in RUN_FIELDS if name in data]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: POST /route only decides and runs no model; "
                    "these fields belong to POST /route-and-run"
                )
        return data

    @field_validator("messages")
    @classmethod
    def _messages(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        return check_messages(messages)

    @field_validator("hints")
    @classmethod
    def _hints(cls, hints: dict[str, str] | None) -> dict[str, str] | None:
        return check_hints(hints)

    @field_validator("response_format")
    @classmethod
    def _format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_response_format(value)


class RouteAndRunBody(RouteBody):
    """``POST /route-and-run``: what the router decides from, and how the run goes. Unknown
    fields are rejected, so typos do not pass silently."""

    temperature: float | None = Field(default=None, ge=0, le=2, description="Forwarded to the arm.")
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    stages: StagesBody | None = None
    validators: ValidatorsBody | None = None


class FeedbackBody(StorableBody):
    """``POST /feedback``: a delayed reward for a request's final decision or one decision."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(
        default=None, description="Rewards the decisions that shaped the request's answer."
    )
    decision_id: str | None = Field(default=None, description="Rewards this decision only.")
    reward: float = Field(ge=0, le=1, description="The outcome: 0 worst, 1 best.")
    source: str = Field(
        default="user",
        min_length=1,
        max_length=100,
        description="Where it came from (thumbs, tests, ...); offline evaluation can pick one.",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same key is recorded once; with another value it is a 409.",
    )
