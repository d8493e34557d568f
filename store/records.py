"""The rows the store returns: frozen values, one class per table concept.

Field names equal column names (the record modules select exactly these columns). JSON
columns come back as plain ``dict`` / ``list`` values typed read-only; treat them as such.
Timestamps are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt

EMBEDDING_DIM = 384
"""Dimension of stored query embeddings: the ``vector(384)`` column of ``query_embeddings``."""

Embedding = npt.NDArray[np.float32]
"""A query embedding: ``EMBEDDING_DIM`` finite float32 values, not all zero."""

JsonObject = Mapping[str, Any]

API_KEY_SCOPES = ("route", "feedback", "read", "admin")
"""What an API key may be allowed to do (the ``api_keys_scopes_known`` constraint)."""

DEFAULT_API_KEY_SCOPES = frozenset({"route", "feedback", "read"})
"""The scopes of a key created without any named, and of keys made before scopes existed."""


class RequestStatus(StrEnum):
    """A request is accepted, then completed, failed or delegated exactly once (delegated:
    decided only, ``POST /route``; the caller runs the chosen model)."""

    ACCEPTED = "accepted"
    COMPLETED = "completed"
    FAILED = "failed"
    DELEGATED = "delegated"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """An accepted chat request and, once finished, its outcome."""

    id: UUID
    tenant: str
    user_id: str | None
    session_id: str | None
    created_at: datetime
    messages: tuple[JsonObject, ...]
    params: JsonObject
    status: RequestStatus
    output: str | None
    model: str | None
    cost_usd: float | None
    latency_ms: float | None
    error: str | None
    completed_at: datetime | None
    api_key_id: UUID | None = None
    """The API key that made the request (None in local mode, without keys)."""
    trace: JsonObject | None = None
    """A completed request's trace beyond its decisions: ``components``, ``assessment``,
    ``timings`` (None for failed requests and those logged before it was kept)."""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One routing decision: the context seen, the eligible arms, the arm drawn and the
    probability it was drawn with (the propensity off-policy evaluation divides by)."""

    id: UUID
    request_id: UUID
    stage: str
    context: JsonObject
    arms: tuple[str, ...]
    chosen_arm: str
    probability: float
    pmf: Mapping[str, float]
    policy_name: str
    policy_version: int
    created_at: datetime
    outcome: str | None = None
    """What became of the decision (its trace's outcome); None when it was not recorded."""
    masked: Mapping[str, str] | None = None
    """The arms masked for it, with their reasons."""
    details: JsonObject | None = None
    cost_usd: float | None = None
    """What the decision's call cost (None when it called no model, or was not recorded)."""
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class RewardRecord:
    """A reward in [0, 1] observed for a decision, from ``source`` (judge, user, validator)."""

    id: int
    decision_id: UUID
    value: float
    source: str
    idempotency_key: str | None
    created_at: datetime
    policy_update: int | None
    counted: bool = True
    """Whether a policy may learn it: the first reward of its source on its decision (a
    later one of the same source is recorded, never learned)."""
    policy_name: str | None = None
    """The policy that learned it (as update ``policy_update``), a prior's name while it is
    held for its tenant, or None while nothing learned it."""


@dataclass(frozen=True, slots=True)
class LearnableReward:
    """A reward with what a policy needs to learn it again: its decision's logged context,
    chosen arm and probability."""

    reward_id: int
    value: float
    policy_update: int | None
    context: JsonObject
    chosen_arm: str
    probability: float
    stage: str = ""
    tenant: str = ""


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """A logged decision's context and chosen arm, with the mean of its rewards (None while
    it has none)."""

    context: JsonObject
    chosen_arm: str
    reward: float | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A stored query near the probe: ``distance`` is the cosine distance, in [0, 2]."""

    request_id: UUID
    distance: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredEmbedding:
    """A row of ``query_embeddings`` with the pre-generation outcomes it carries (migration
    0013): the request's 'pre' decisions' ids, chosen arms, mean counted rewards (None: none
    yet) and times, in the order (time, id); all empty when it has no such decision."""

    request_id: UUID
    tenant: str
    user_id: str | None
    embedding: Embedding
    created_at: datetime
    decision_ids: tuple[UUID, ...]
    arms: tuple[str, ...]
    rewards: tuple[float | None, ...]
    decided_at: tuple[datetime, ...]


@dataclass(frozen=True, slots=True)
class NeighbourOutcome:
    """The arm a neighbouring request was routed to and its mean reward (None: no reward yet).

    ``created_at`` is when that decision was made.
    """

    request_id: UUID
    distance: float
    arm: str
    reward: float | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key bound to ``tenant``; only the sha256 of its token is stored.

    ``prefix`` is the token's first characters, to tell keys apart in listings.
    """

    id: UUID
    tenant: str
    name: str | None
    prefix: str
    key_hash: str = field(repr=False)
    created_at: datetime
    revoked_at: datetime | None
    scopes: frozenset[str] = DEFAULT_API_KEY_SCOPES
    """What the key may do (``API_KEY_SCOPES``)."""

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A serialized policy (``model``) at one ``version`` of policy ``name``."""

    id: int
    name: str
    version: int
    model: bytes = field(repr=False)
    meta: JsonObject
    created_at: datetime
