"""Many requests' rows written in one go: the group commit of the router's journals.

A ``Batch`` collects new requests, decisions, rewards, outcomes and query embeddings of any
number of requests; ``write_batch`` sends each kind with one ``executemany`` (psycopg
pipelines it: one round trip per kind, not per row) in the caller's transaction. The rows are
the same the single-row functions of ``store.requests``, ``store.decisions``,
``store.rewards`` and ``store.embeddings`` write, checked the same way.

Rewards keep their idempotency: a reward whose key is already recorded is skipped; and, as
``store.rewards.record_reward`` does, only the first of a source on a decision is counted.
An outcome for a request that is not ``accepted`` (unknown, already completed or failed) raises
ConflictError, and so does a request or decision id that exists: the caller's transaction
then rolls back whole, and the caller can write the batch's journals one by one to find the
culprit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from features.errors import ConflictError
from store.embeddings import as_embedding
from store.ids import Id, reference
from store.records import Embedding
from store.translation import translated

_INSERT_REQUEST = (
    "INSERT INTO requests (id, tenant, user_id, session_id, messages, params, api_key_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_DECISION = (
    "INSERT INTO decisions (id, request_id, stage, context, arms, chosen_arm, probability, "
    "pmf, policy_name, policy_version, outcome, masked, details, cost_usd, latency_ms) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_REWARD = (
    "INSERT INTO rewards (decision_id, value, source, idempotency_key, policy_update, "
    "policy_name, counted) SELECT %(did)s, %(value)s, %(source)s, %(key)s, %(update)s, "
    "%(policy)s, NOT EXISTS (SELECT 1 FROM rewards WHERE decision_id = %(did)s "
    "AND source = %(source)s AND counted) ON CONFLICT (idempotency_key) DO NOTHING"
)
_COMPLETE = (
    "UPDATE requests SET status = 'completed', output = %s, model = %s, cost_usd = %s, "
    "latency_ms = %s, trace = %s, completed_at = clock_timestamp() "
    "WHERE id = %s AND status = 'accepted'"
)
_FAIL = (
    "UPDATE requests SET status = 'failed', error = %s, model = %s, latency_ms = %s, "
    "completed_at = clock_timestamp() WHERE id = %s AND status = 'accepted'"
)
_DELEGATE = (
    "UPDATE requests SET status = 'delegated', model = %s, latency_ms = %s, "
    "completed_at = clock_timestamp() WHERE id = %s AND status = 'accepted'"
)
_INSERT_EMBEDDING = (
    "INSERT INTO query_embeddings (request_id, tenant, user_id, embedding) VALUES (%s, %s, %s, %s)"
)


@dataclass
class Batch:
    """Rows waiting for ``write_batch``, in the order they must go in."""

    requests: list[tuple[Any, ...]] = field(default_factory=list)
    decisions: list[tuple[Any, ...]] = field(default_factory=list)
    rewards: list[dict[str, Any]] = field(default_factory=list)
    completed: list[tuple[Any, ...]] = field(default_factory=list)
    failed: list[tuple[Any, ...]] = field(default_factory=list)
    delegated: list[tuple[Any, ...]] = field(default_factory=list)
    embeddings: list[tuple[Any, ...]] = field(default_factory=list)

    def request(
        self,
        *,
        request_id: Id,
        tenant: str,
        user_id: str | None,
        session_id: str | None,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        api_key_id: Id | None,
    ) -> None:
        self.requests.append(
            (
                reference(request_id, "request"),
                tenant,
                user_id,
                session_id,
                Jsonb([dict(message) for message in messages]),
                Jsonb(dict(params)),
                None if api_key_id is None else reference(api_key_id, "API key"),
            )
        )

    def decision(
        self,
        *,
        decision_id: Id,
        request_id: Id,
        stage: str,
        context: Mapping[str, Any],
        arms: Sequence[str],
        chosen_arm: str,
        probability: float,
        pmf: Mapping[str, float],
        policy_name: str,
        policy_version: int,
        outcome: str | None = None,
        masked: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
        cost_usd: float | None = None,
        latency_ms: float | None = None,
    ) -> None:
        self.decisions.append(
            (
                reference(decision_id, "decision"),
                reference(request_id, "request"),
                stage,
                Jsonb(dict(context)),
                list(arms),
                chosen_arm,
                probability,
                Jsonb({arm: float(p) for arm, p in pmf.items()}),
                policy_name,
                policy_version,
                outcome,
                None if masked is None else Jsonb(dict(masked)),
                None if details is None else Jsonb(dict(details)),
                cost_usd,
                latency_ms,
            )
        )

    def reward(
        self,
        *,
        decision_id: Id,
        value: float,
        source: str,
        idempotency_key: str,
        policy_update: int | None,
        policy_name: str | None = None,
    ) -> None:
        self.rewards.append(
            {
                "did": reference(decision_id, "decision"),
                "value": value,
                "source": source,
                "key": idempotency_key,
                "update": policy_update,
                "policy": policy_name,
            }
        )

    def complete(
        self,
        request_id: Id,
        *,
        output: str,
        model: str,
        cost_usd: float | None,
        latency_ms: float | None,
        trace: Mapping[str, Any] | None = None,
    ) -> None:
        """``trace``: the answer's components, assessment and timings (JSON)."""
        rid = reference(request_id, "request")
        jsonb = None if trace is None else Jsonb(dict(trace))
        self.completed.append((output, model, cost_usd, latency_ms, jsonb, rid))

    def fail(
        self, request_id: Id, *, error: str, model: str | None, latency_ms: float | None
    ) -> None:
        self.failed.append((error, model, latency_ms, reference(request_id, "request")))

    def delegate(self, request_id: Id, *, model: str, latency_ms: float | None) -> None:
        """The request was decided only: the caller runs ``model`` itself."""
        self.delegated.append((model, latency_ms, reference(request_id, "request")))

    def embedding(
        self, *, request_id: Id, tenant: str, user_id: str | None, embedding: Embedding
    ) -> None:
        rid = reference(request_id, "request")
        self.embeddings.append((rid, tenant, user_id, as_embedding(embedding)))

    def counts(self) -> dict[str, int]:
        """How many rows of each kind wait."""
        kinds: dict[str, Sized] = {
            "requests": self.requests,
            "decisions": self.decisions,
            "rewards": self.rewards,
            "completed": self.completed,
            "failed": self.failed,
            "delegated": self.delegated,
            "embeddings": self.embeddings,
        }
        return {kind: len(rows) for kind, rows in kinds.items()}

    def __len__(self) -> int:
        return sum(
            len(rows)
            for rows in (
                self.requests,
                self.decisions,
                self.rewards,
                self.completed,
                self.failed,
                self.delegated,
                self.embeddings,
            )
        )


async def write_batch(conn: AsyncConnection[Any], batch: Batch) -> None:
    """Write every row of ``batch`` in the caller's transaction (see the module docstring)."""
    async with conn.cursor() as cursor:
        with translated(f"cannot log {len(batch.requests)} requests"):
            if batch.requests:
                await cursor.executemany(_INSERT_REQUEST, batch.requests)
        with translated(f"cannot log {len(batch.decisions)} decisions"):
            if batch.decisions:
                await cursor.executemany(_INSERT_DECISION, batch.decisions)
        with translated(f"cannot record {len(batch.rewards)} rewards"):
            if batch.rewards:
                await cursor.executemany(_INSERT_REWARD, batch.rewards)
        for query, rows, verb in (
            (_COMPLETE, batch.completed, "complete"),
            (_FAIL, batch.failed, "fail"),
            (_DELEGATE, batch.delegated, "delegate"),
        ):
            if not rows:
                continue
            with translated(f"cannot {verb} {len(rows)} requests"):
                await cursor.executemany(query, rows)
            if cursor.rowcount != len(rows):
                raise ConflictError(
                    f"cannot {verb} {len(rows)} requests: {len(rows) - cursor.rowcount} of "
                    "them are unknown or no longer accepted"
                )
        with translated(f"cannot store {len(batch.embeddings)} query embeddings"):
            if batch.embeddings:
                await cursor.executemany(_INSERT_EMBEDDING, batch.embeddings)
