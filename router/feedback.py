"""Delayed rewards: a user's verdict or a downstream outcome, recorded once and learned once.

Feedback names one decision, or a whole request. A request's feedback rewards every decision
that shaped the answer it delivered: the generation decision that produced it (the last
pre-/in-generation one; earlier ones were cut or failed), the escalation decisions from the
last one that escalated on (the one whose answer was delivered, and the step that accepted
it; earlier steps of a chain led to answers that were replaced), and the component
decisions. With an idempotency key, each of those rewards is recorded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from features.errors import NotFoundError, RequestError
from learner.context import Context
from router import tracing
from router.lifecycle.stages import (
    COMPONENT,
    ESCALATE_PREFIX,
    ESCALATION,
    IN_GENERATION,
    PRE_GENERATION,
)
from router.policies import PolicyRegistry
from store import decisions as decision_log
from store import rewards as reward_log
from store.database import Database
from store.records import DecisionRecord, RewardRecord


@dataclass(frozen=True)
class Credited:
    """One decision the feedback was recorded for."""

    decision: DecisionRecord
    reward: RewardRecord
    created: bool
    policy_updates: int | None


@dataclass(frozen=True)
class FeedbackResult:
    credited: tuple[Credited, ...]

    @property
    def primary(self) -> Credited:
        return self.credited[0]

    @property
    def created(self) -> bool:
        return any(c.created for c in self.credited)


def credited_decisions(decisions: Sequence[DecisionRecord]) -> list[DecisionRecord]:
    """The decisions of a request that shaped its answer, generation first."""
    generation = [d for d in decisions if d.stage in (PRE_GENERATION, IN_GENERATION)]
    chosen = generation[-1:]
    escalations = [d for d in decisions if d.stage == ESCALATION]
    steps = [i for i, d in enumerate(escalations) if d.chosen_arm.startswith(ESCALATE_PREFIX)]
    chosen += escalations[steps[-1] :] if steps else escalations
    chosen += [d for d in decisions if d.stage == COMPONENT]
    return chosen


async def _targets(
    database: Database, decision_id: str | None, request_id: str | None
) -> list[DecisionRecord]:
    async with database.connection() as conn:
        if decision_id is not None:
            return [await decision_log.get_decision(conn, decision_id)]
        assert request_id is not None
        decisions = await decision_log.list_decisions_for_request(conn, request_id)
    if not decisions:
        raise NotFoundError(f"no decisions for request {request_id!r}")
    return credited_decisions(decisions)


async def record_feedback(
    database: Database,
    policies: PolicyRegistry,
    *,
    reward: float,
    source: str,
    decision_id: str | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    learn: bool = True,
) -> FeedbackResult:
    """Record ``reward`` for a decision (or a request's decisions) and learn from it.

    A repeated ``idempotency_key`` returns the first recording and learns nothing again.
    With ``learn`` False (a replica), the reward is only recorded: the learner learns it.
    """
    if (decision_id is None) == (request_id is None):
        raise RequestError("give exactly one of decision_id and request_id")
    if not 0.0 <= reward <= 1.0:
        raise RequestError(f"reward must be in [0, 1], got {reward}")
    targets = await _targets(database, decision_id, request_id)
    keys = [
        None
        if idempotency_key is None
        else idempotency_key
        if len(targets) == 1
        else f"{idempotency_key}:{d.id}"
        for d in targets
    ]
    credited: list[Credited] = []
    rows = tracing.store_attributes("record_rewards", {"rewards": len(targets)})
    with tracing.span("signalroute.store.record_rewards", rows):
        async with database.connection() as conn:
            recorded = [
                await reward_log.record_reward(
                    conn, decision_id=d.id, value=reward, source=source, idempotency_key=key
                )
                for d, key in zip(targets, keys, strict=True)
            ]
    for decision, (record, created) in zip(targets, recorded, strict=True):
        updates = None
        if created and learn and decision.stage in policies.stages:
            context = Context.from_json(decision.context)
            updates = await policies.learn(
                decision.stage, context, decision.chosen_arm, decision.probability, reward
            )
            async with database.connection() as conn:
                await reward_log.mark_learned(conn, record.id, updates)
        credited.append(Credited(decision, record, created, updates))
    return FeedbackResult(tuple(credited))
