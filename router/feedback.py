"""Delayed rewards: a user's verdict or a downstream outcome, recorded once and learned once.

Feedback names one decision, or a whole request. A request's feedback rewards every decision
that shaped the answer it delivered: the generation decision that produced it (the last
pre-/in-generation one; earlier ones were cut or failed), the escalation decisions from the
last one that escalated on (the one whose answer was delivered, and the step that accepted
it; earlier steps of a chain led to answers that were replaced), and the component
decisions. With an idempotency key, each of those rewards is recorded once; whatever the keys,
one source's reward on one decision is learned once (``store.rewards``); and feedback on a
decision older than the feedback window is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from features.errors import FeedbackWindowClosedError, NotFoundError, RequestError
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
from store import requests as request_log
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
    policy_name: str | None = None
    """The policy that learned the reward (a prior's name: held for the tenant's own)."""
    counted_as: int | None = None
    """When ``reward.counted`` is False: the id of the reward of the same source that
    counts for the decision."""


@dataclass(frozen=True)
class FeedbackResult:
    credited: tuple[Credited, ...]

    @property
    def primary(self) -> Credited:
        return self.credited[0]

    @property
    def created(self) -> bool:
        return any(c.created for c in self.credited)


DEFAULT_WINDOW = timedelta(days=7)
"""How old a decision may be when its feedback arrives (``SIGNALROUTE_FEEDBACK_WINDOW_DAYS``)."""


def check_window(decisions: Sequence[DecisionRecord], now: datetime, window: timedelta) -> None:
    """Refuse (FeedbackWindowClosedError) feedback on a decision made more than ``window``
    before ``now``: a reward that late would teach today's policy about a context and a pool
    that may no longer exist."""
    for decision in decisions:
        age = now - decision.created_at
        if age > window:
            raise FeedbackWindowClosedError(
                f"feedback refused: decision {decision.id} was made {_days(age)} ago, and "
                f"feedback is accepted for {_days(window)} after a decision "
                "(SIGNALROUTE_FEEDBACK_WINDOW_DAYS)"
            )


def _days(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


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
    now: datetime | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> FeedbackResult:
    """Record ``reward`` for a decision (or a request's decisions) and learn from it, with
    the policy the request's tenant learns with.

    A repeated ``idempotency_key`` returns the first recording and learns nothing again. A
    second reward of the same ``source`` on a decision (another key, or none) is recorded
    but not counted: nothing learns it (``Credited.counted_as`` names the one that counts).
    Feedback on a decision older than ``window`` (at ``now``, default: the current time)
    raises FeedbackWindowClosedError and records nothing. With ``learn`` False (a replica),
    the reward is only recorded: the learner learns it.
    """
    if (decision_id is None) == (request_id is None):
        raise RequestError("give exactly one of decision_id and request_id")
    if not 0.0 <= reward <= 1.0:
        raise RequestError(f"reward must be in [0, 1], got {reward}")
    targets = await _targets(database, decision_id, request_id)
    check_window(targets, now or datetime.now(UTC), window)
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
            tenant = (await request_log.get_request(conn, targets[0].request_id)).tenant
            recorded = [
                await reward_log.record_reward(
                    conn, decision_id=d.id, value=reward, source=source, idempotency_key=key
                )
                for d, key in zip(targets, keys, strict=True)
            ]
    for decision, (record, created) in zip(targets, recorded, strict=True):
        learned = None
        counted_as = None
        if not record.counted:
            async with database.connection(transaction=False) as conn:
                counted_as = await reward_log.counted_reward(conn, decision.id, source)
        elif created and learn and decision.stage in policies.stages:
            context = Context.from_json(decision.context)
            learned = await policies.learn_for(
                tenant,
                decision.stage,
                context,
                decision.chosen_arm,
                decision.probability,
                reward,
                reward_id=record.id,
            )
            async with database.connection() as conn:
                await reward_log.mark_learned(conn, record.id, learned.policy_name, learned.update)
        credited.append(
            Credited(
                decision,
                record,
                created,
                None if learned is None else learned.update,
                None if learned is None else learned.policy_name,
                counted_as,
            )
        )
    return FeedbackResult(tuple(credited))
