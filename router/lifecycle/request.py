"""A request to route and run, as the lifecycle sees it (the HTTP layer builds it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from features.query import Message, check_hints
from features.validators import Expectations
from learner.reward import RewardWeights
from router.constraints import Constraints
from router.conversations import Stickiness
from router.lifecycle.stages import StageOptions


@dataclass(frozen=True)
class RouteRequest:
    """A request to route and run."""

    messages: tuple[Message, ...]
    weights: RewardWeights
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    response_format: Mapping[str, Any] | None = None
    constraints: Constraints = field(default_factory=Constraints)
    max_tokens: int | None = None
    """The completion-token cap (``max_tokens`` or ``max_completion_tokens``)."""
    temperature: float | None = None
    stream: bool = False
    stages: StageOptions = field(default_factory=StageOptions)
    regex: str | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    api_key_id: str | None = None
    profile: str | None = None
    request_id: str | None = None
    hints: Mapping[str, str] = field(default_factory=dict)
    """The caller's descriptors of the request, features of every stage's context."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Chat Completions fields forwarded to every arm the request runs on, as given."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """The Chat Completions fields the caller set (``/v1``), logged with the request."""
    stickiness: Stickiness = "prefer"
    """How the conversation's previous turn's arm weighs (``router.conversations``)."""
    switch_cost: float = 0.05
    """Reward taken from a pre-generation decision that leaves the previous turn's arm."""
    tools: tuple[Mapping[str, Any], ...] | None = None
    """Functions offered (OpenAI ``tools``); answers' calls are checked against them. On
    ``/v1`` they are also in ``params``, which sends them to the arms."""
    tool_choice: Any = None

    def __post_init__(self) -> None:
        check_hints(self.hints)  # ValueError naming the bad hint
        if not 0.0 <= self.switch_cost <= 1.0:
            raise ValueError("switch_cost must be in [0, 1]")

    def expectations(self) -> Expectations:
        return Expectations(
            response_format=self.response_format,
            regex=self.regex,
            min_chars=self.min_chars,
            max_chars=self.max_chars,
            tools=self.tools,
            tool_choice=self.tool_choice,
        )
