"""What one request carries through its stages: its signals, its journal, its ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from features.embedding import Vector
from features.errors import ProviderError
from features.historical import HistoricalSignals
from features.query import Message, QuerySignals
from features.system import ArmHealth, Spend
from router.constraints import Eligibility
from router.lifecycle.decisions import Drawn
from router.lifecycle.journal import Completed, Journal
from router.lifecycle.prompts import with_format_instruction
from router.lifecycle.request import RouteRequest
from router.pool import Arm
from router.providers import ChatRequest, Completion
from router.trace import DecisionTrace

JSON_CAPABILITY = "json"
"""The capability of an arm that takes ``response_format`` (JSON mode, JSON schemas)."""


def wants_json(response_format: Mapping[str, Any] | None) -> bool:
    return (response_format or {}).get("type") in ("json_object", "json_schema")


@dataclass(frozen=True)
class CheckedArms:
    """The arms' health and eligibility as the request was checked before it was logged, at
    the health tracker's ``changes`` count then."""

    health: Mapping[str, ArmHealth]
    eligibility: Eligibility
    changes: int


@dataclass
class AfterAnswer:
    """What a run leaves to do once its answer is out, with a background writer: learn the
    generation's rewards (each with the draw it rewards), then hand the journal over
    (``outcome``: set when the answer is whole; None when the run ended before it)."""

    rewards: list[tuple[Drawn, float]] = field(default_factory=list)
    outcome: Completed | None = None
    embedding: Vector | None = None

    @property
    def pending(self) -> bool:
        return bool(self.rewards) or self.outcome is not None


@dataclass(frozen=True)
class Prepared:
    """What every stage of one request needs."""

    request: RouteRequest
    request_id: str
    started: float
    embedding: Vector
    query: QuerySignals
    history: HistoricalSignals
    user_history: HistoricalSignals
    spend: Spend
    journal: Journal
    timings: dict[str, float] = field(default_factory=dict)
    previous_arm: str | None = None
    """The arm that served the conversation's previous turn (None: a first turn, or free)."""
    turn_key: str = ""
    """The request's ``router.conversations.turn_key``, computed once."""
    checked: CheckedArms | None = None
    """What the request's check found; the first pre-generation draw starts from it while no
    call was recorded since (``router.lifecycle.generating.choose``)."""
    after: AfterAnswer = field(default_factory=AfterAnswer)
    """What the run leaves to do once its answer is out (filled by ``Router._lifecycle``)."""

    def chat(self, messages: tuple[Message, ...] | None = None, *, arm: Arm) -> ChatRequest:
        """What ``arm`` is asked: ``messages`` (default: the request's) with the request's
        parameters. A JSON response format goes to an arm with the ``json`` capability as
        ``response_format``; any other arm gets it as an instruction in the prompt."""
        request = self.request
        messages = messages if messages is not None else request.messages
        response_format = request.response_format
        if wants_json(response_format) and JSON_CAPABILITY not in arm.capabilities:
            assert response_format is not None
            messages = with_format_instruction(messages, response_format)
            response_format = None
        caps_by_name = "max_completion_tokens" in request.params
        return ChatRequest(
            messages=messages,
            max_tokens=None if caps_by_name else request.max_tokens,
            temperature=request.temperature,
            response_format=response_format,
            params=request.params,
        )


@dataclass(frozen=True)
class Generated:
    """The run that produced an answer, its decision still waiting for its reward."""

    drawn: Drawn
    completion: Completion
    signals: Mapping[str, Any]
    masked: Mapping[str, str]
    last_run: bool = False
    """No run could follow it: the content detectors let it finish."""


@dataclass
class Ledger:
    """Decisions settled so far and what they cost, for one request."""

    traces: list[DecisionTrace] = field(default_factory=list)
    cost_usd: float = 0.0
    last_error: ProviderError | None = None

    def add(self, decision: DecisionTrace, cost_usd: float = 0.0) -> None:
        self.traces.append(decision)
        self.cost_usd += cost_usd

    def insert(self, index: int, decision: DecisionTrace, cost_usd: float = 0.0) -> None:
        """Add a decision settled late at the place it was made."""
        self.traces.insert(index, decision)
        self.cost_usd += cost_usd
