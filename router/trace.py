"""What a routed request returns: its decisions as traces, and the events of a run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from features.errors import ProviderError
from router.providers import Delta, FunctionCall


@dataclass(frozen=True)
class DecisionTrace:
    """One decision as the caller sees it: what was drawn, with what probability, and why."""

    decision_id: str
    stage: str
    arm: str
    probability: float
    pmf: Mapping[str, float]
    policy_version: int
    signals: Mapping[str, Any]
    masked: Mapping[str, str]
    outcome: str
    reward: float | None
    cost_usd: float | None = None
    latency_ms: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    policy: str = ""
    """The policy drawn from (``router.tenancy``): the stage's shared one, a tenant's own,
    or the prior; ``policy_version`` is its update count then."""

    def as_json(self) -> dict[str, Any]:
        """The trace as a response carries it: its fields by name. Its mappings already hold
        JSON values, so they are shared, not copied (``dataclasses.asdict`` would copy every
        nested value of every decision on every response)."""
        return {name: getattr(self, name) for name in _DECISION_FIELDS}


@dataclass(frozen=True)
class ComponentTrace:
    """Which arm produced which part of the final answer; ``replaced``: another arm's part
    took the place of the answering arm's own (kept otherwise). ``score`` and ``reason``:
    the judge's grade of this part when the answer was judged per component (else None)."""

    index: int
    kind: str
    arm: str
    chars: int
    replaced: bool = False
    score: float | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The component as a response carries it: its fields by name."""
        return {name: getattr(self, name) for name in _COMPONENT_FIELDS}


_DECISION_FIELDS = tuple(f.name for f in fields(DecisionTrace))
_COMPONENT_FIELDS = tuple(f.name for f in fields(ComponentTrace))


@dataclass(frozen=True)
class Switch:
    """In a stream: everything sent before this event is replaced by what follows it."""

    stage: str
    from_arm: str
    to_arm: str
    reason: str


@dataclass(frozen=True)
class RouteResult:
    """The answer, who gave it, what it cost, and every decision that led to it."""

    request_id: str
    output: str
    model: str
    cost_usd: float
    latency_ms: float
    decisions: tuple[DecisionTrace, ...] = ()
    components: tuple[ComponentTrace, ...] = ()
    assessment: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    finish_reason: str | None = None
    """The answering call's finish reason, as its provider gave it."""
    prompt_tokens: int | None = None
    """The provider's count for the answering call; None when it sent none, or when the
    answer is not one call's text (a component was rewritten)."""
    completion_tokens: int | None = None
    format_error: str | None = None
    """Why the answer fails the requested response format; None when it passes or none
    was requested."""
    tool_calls: tuple[FunctionCall, ...] = ()
    """The answer's tool calls (checked: ``assessment`` holds their verdicts)."""


@dataclass(frozen=True)
class RouteFailed:
    """Every attempt failed; the request is logged as failed."""

    request_id: str
    error: ProviderError
    decisions: tuple[DecisionTrace, ...]


@dataclass(frozen=True)
class Decided:
    """A decide-only request's answer (``POST /route``): the pre-generation decision, and
    where the caller finds the chosen arm's model."""

    request_id: str
    decision: DecisionTrace
    model: str
    """The provider's model id of the chosen arm (``decision.arm``)."""
    base_url: str
    timings: Mapping[str, float] = field(default_factory=dict)


RouteEvent = Delta | Switch | RouteResult | RouteFailed
