"""The deployed policies as the store keeps them, explained: load a stage's newest snapshot,
name its weights, and explain a logged decision (the PMF it was drawn from, and why).

The store holds what the running service decided: every decision with its full context and
PMF, and each stage's policy snapshots. ``load_policy`` restores a snapshot as a
``VWPolicy``; ``named_weights`` reads its weights with their names (``learner.inspection``
explains how an arm's score is made of them); ``explain_decision`` puts a logged decision
next to what a policy makes of the same context now.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from features.errors import NotFoundError
from learner.config import PolicyConfig
from learner.context import Context
from learner.inspection import Explanation, ReadableModel, explain, parse_readable_model
from learner.vw_policy import PolicyState, VWPolicy
from learner.vw_readable import readable_model
from router.runtime import open_database
from router.settings import Settings
from store import decisions as decision_log
from store import rewards as reward_log
from store import snapshots
from store.database import Database
from store.records import DecisionRecord, RewardRecord


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Database]:
    """The store of a service with ``settings``: its database URL, or its embedded server
    under ``data_dir`` (started here when no service runs on it, stopped on exit)."""
    async with AsyncExitStack() as stack:
        yield await open_database(settings, stack)


def policy_from_snapshot(name: str, model: bytes, meta: Mapping[str, Any]) -> VWPolicy:
    """A stored snapshot as a VW policy (its config from the snapshot's metadata; keys this
    version does not know are ignored)."""
    raw = dict(meta.get("config") or {})
    known = set(PolicyConfig.__dataclass_fields__)
    values = {k: v for k, v in raw.items() if k in known}
    if "interactions" in values:
        values["interactions"] = tuple(values["interactions"])
    state = PolicyState(
        name=name, config=PolicyConfig(**values), model=model, updates=int(meta.get("updates", 0))
    )
    return VWPolicy.restore(state)


@dataclass(frozen=True)
class LoadedPolicy:
    """A stage's policy restored from snapshot ``version`` (close it when done)."""

    stage: str
    version: int
    policy: VWPolicy


async def load_policy(database: Database, stage: str) -> LoadedPolicy:
    """The newest snapshot of ``stage``'s policy. Raises NotFoundError when there is none
    (a service snapshots every SIGNALROUTE_SNAPSHOT_EVERY updates and at shutdown)."""
    async with database.connection() as conn:
        snapshot = await snapshots.latest_snapshot(conn, stage)
    if snapshot is None:
        raise NotFoundError(
            f"no snapshot of the {stage!r} policy in the store yet (a service snapshots every "
            "SIGNALROUTE_SNAPSHOT_EVERY updates and when it stops)"
        )
    policy = policy_from_snapshot(stage, snapshot.model, snapshot.meta)
    return LoadedPolicy(stage=stage, version=snapshot.version, policy=policy)


async def stage_decisions(
    database: Database, stage: str, *, limit: int = decision_log.DEFAULT_LIST_LIMIT
) -> list[DecisionRecord]:
    """The oldest ``limit`` logged decisions of ``stage``."""
    async with database.connection() as conn:
        return await decision_log.list_decisions(conn, stage=stage, limit=limit)


def contexts_of(decisions: Iterable[DecisionRecord]) -> list[Context]:
    """The logged contexts of ``decisions``, rebuilt as the policy saw them."""
    return [Context.from_json(d.context) for d in decisions]


def named_weights(policy: VWPolicy, contexts: Iterable[Context]) -> ReadableModel:
    """``policy``'s weights with the names of every feature ``contexts`` use."""
    return parse_readable_model(readable_model(policy.state().model, contexts))


@dataclass(frozen=True)
class DecisionExplanation:
    """A logged decision, its rewards, and a policy's explanation of the same context."""

    decision: DecisionRecord
    rewards: tuple[RewardRecord, ...]
    explanation: Explanation

    @property
    def context(self) -> Context:
        return Context.from_json(self.decision.context)

    def arm_rows(self) -> list[dict[str, Any]]:
        """Per eligible arm: the logged probability (what the decision was drawn from), the
        explaining policy's probability and estimated reward, and whether it was drawn."""
        logged = self.decision.pmf
        return [
            {
                "arm": row["arm"],
                "chosen": row["arm"] == self.decision.chosen_arm,
                "logged_probability": float(logged.get(str(row["arm"]), 0.0)),
                "probability_now": row["probability"],
                "estimated_reward": row["estimated_reward"],
            }
            for row in self.explanation.arm_rows()
        ]


async def explain_decision(
    database: Database,
    decision_id: str,
    policy: VWPolicy,
    *,
    also_name: Sequence[Context] = (),
) -> DecisionExplanation:
    """Explain logged decision ``decision_id`` with ``policy`` (e.g. the stage's newest
    snapshot, which may have learned since the decision: ``logged_probability`` is what was
    drawn from, ``probability_now`` what ``policy`` gives). ``also_name`` adds contexts to
    name weights from (their names do not change this decision's contributions).

    Raises NotFoundError for an unknown decision.
    """
    async with database.connection() as conn:
        decision = await decision_log.get_decision(conn, decision_id)
        rewards = await reward_log.list_rewards_for_decisions(conn, [decision.id])
    return explain_logged(decision, policy, rewards=rewards, also_name=also_name)


def explain_logged(
    decision: DecisionRecord,
    policy: VWPolicy,
    *,
    rewards: Iterable[RewardRecord] = (),
    also_name: Sequence[Context] = (),
) -> DecisionExplanation:
    """``explain_decision`` for a decision record already read from the store."""
    context = Context.from_json(decision.context)
    model = named_weights(policy, [context, *also_name])
    return DecisionExplanation(
        decision=decision,
        rewards=tuple(rewards),
        explanation=explain(policy, context, model),
    )
