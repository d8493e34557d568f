"""What one request carries through its stages: its signals, its journal, its ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from features.embedding import Vector
from features.errors import ProviderError
from features.historical import HistoricalSignals
from features.query import Message, QuerySignals
from features.system import Spend
from router.lifecycle.decisions import Drawn
from router.lifecycle.journal import Journal
from router.lifecycle.request import RouteRequest
from router.providers import ChatRequest, Completion
from router.trace import DecisionTrace


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

    def chat(self, messages: tuple[Message, ...] | None = None) -> ChatRequest:
        request = self.request
        return ChatRequest(
            messages=messages if messages is not None else request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            response_format=request.response_format,
        )


@dataclass(frozen=True)
class Generated:
    """The run that produced an answer, its decision still waiting for its reward."""

    drawn: Drawn
    completion: Completion
    signals: Mapping[str, Any]
    masked: Mapping[str, str]


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
