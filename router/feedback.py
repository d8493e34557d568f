"""Delayed rewards: a user's verdict or a downstream outcome, recorded once and learned once."""

from __future__ import annotations

from dataclasses import dataclass

from features.errors import NotFoundError, RequestError
from learner.context import Context
from router.policies import PolicyRegistry
from store import decisions as decision_log
from store import rewards as reward_log
from store.database import Database
from store.records import DecisionRecord, RewardRecord


@dataclass(frozen=True)
class FeedbackResult:
    decision: DecisionRecord
    reward: RewardRecord
    created: bool
    policy_updates: int | None


async def _target_decision(
    database: Database, decision_id: str | None, request_id: str | None
) -> DecisionRecord:
    async with database.connection() as conn:
        if decision_id is not None:
            return await decision_log.get_decision(conn, decision_id)
        assert request_id is not None
        decisions = await decision_log.list_decisions_for_request(conn, request_id)
    if not decisions:
        raise NotFoundError(f"no decisions for request {request_id!r}")
    # The request's answer came from its last decision (earlier ones failed over to it).
    return decisions[-1]


async def record_feedback(
    database: Database,
    policies: PolicyRegistry,
    *,
    reward: float,
    source: str,
    decision_id: str | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> FeedbackResult:
    """Record ``reward`` for a decision (or a request's final decision) and learn from it.

    A repeated ``idempotency_key`` returns the first recording and learns nothing again.
    """
    if (decision_id is None) == (request_id is None):
        raise RequestError("give exactly one of decision_id and request_id")
    if not 0.0 <= reward <= 1.0:
        raise RequestError(f"reward must be in [0, 1], got {reward}")
    decision = await _target_decision(database, decision_id, request_id)
    async with database.connection() as conn:
        record, created = await reward_log.record_reward(
            conn,
            decision_id=decision.id,
            value=reward,
            source=source,
            idempotency_key=idempotency_key,
        )
    updates = None
    if created and decision.stage in policies.stages:
        context = Context.from_json(decision.context)
        updates = await policies.learn(
            decision.stage, context, decision.chosen_arm, decision.probability, reward
        )
    return FeedbackResult(decision=decision, reward=record, created=created, policy_updates=updates)
