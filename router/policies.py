"""The deployed policies, one per lifecycle stage, and their snapshots in the store.

A policy is restored from its newest snapshot at start-up, snapshotted every
``snapshot_every`` updates, and once more at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime

from features.errors import SignalrouteError
from learner.anchor import Evidence
from learner.config import PolicyConfig
from learner.context import Context
from learner.vw_policy import PolicyState, VWPolicy
from router import tracing
from router.lifecycle.stages import PRE_GENERATION
from store import rewards as reward_log
from store import snapshots
from store.database import Database

__all__ = ["PRE_GENERATION", "PolicyRegistry"]

log = logging.getLogger("signalroute.policies")


class PolicyRegistry:
    """Owns the VW policies of the running service and persists them."""

    def __init__(
        self,
        database: Database,
        configs: Mapping[str, PolicyConfig],
        *,
        snapshot_every: int = 100,
        owner: bool = True,
    ) -> None:
        """``owner`` False makes a read-only replica: it never snapshots (the learner owns
        the snapshots) and follows them with ``refresh``."""
        self._database = database
        self._configs = dict(configs)
        self._snapshot_every = snapshot_every
        self._owner = owner
        self._policies: dict[str, VWPolicy] = {}
        self._saved_at: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._save_lock = asyncio.Lock()
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._evidence: dict[str, Evidence] = {}

    def evidence(self, stage: str) -> Evidence:
        """The rewards a rule-anchored stage's decisions earned, per bucket and action
        (``learner.anchor``), gathered by this process since it started: after a restart a
        stage follows its rule until the evidence has grown again."""
        return self._evidence.setdefault(stage, Evidence())

    def version(self, stage: str) -> int:
        """The snapshot version the stage's policy was restored from (0: none)."""
        return self._versions.get(stage, 0)

    async def refresh(self) -> list[str]:
        """Replicas: adopt every newer snapshot; returns the stages that changed."""
        changed = []
        for stage, config in self._configs.items():
            async with self._database.connection(transaction=False) as conn:
                # The version first: the model itself only when there is a newer one.
                version = await snapshots.latest_version(conn, stage)
                if version is None or version <= self._versions.get(stage, 0):
                    continue
                snapshot = await snapshots.latest_snapshot(conn, stage)
            if snapshot is None:
                continue
            updates = int(snapshot.meta.get("updates", 0))
            old = self._policies.get(stage)
            self._policies[stage] = VWPolicy.restore(
                PolicyState(name=stage, config=config, model=snapshot.model, updates=updates)
            )
            self._versions[stage] = snapshot.version
            self._saved_at[stage] = updates
            if old is not None:
                old.close()
            changed.append(stage)
        return changed

    async def learn_logged(self, stage: str) -> int:
        """The learner: learn every logged reward of ``stage`` not learned yet, in order."""
        return await self._relearn(stage, self._policies[stage], None)

    async def load(self, *, relearn: bool = True) -> None:
        """Restore each stage's newest snapshot (or start cold), then (``relearn``) learn
        again the rewards logged after it, so a crash loses no learning and applies no reward
        twice."""
        for stage, config in self._configs.items():
            async with self._database.connection() as conn:
                snapshot = await snapshots.latest_snapshot(conn, stage)
            if snapshot is not None:
                self._versions[stage] = snapshot.version
            if snapshot is None:
                policy = VWPolicy(stage, config)
                since = None
                log.info("policy %s starts cold (%s)", stage, config.vw_args())
            else:
                updates = int(snapshot.meta.get("updates", 0))
                policy = VWPolicy.restore(
                    PolicyState(name=stage, config=config, model=snapshot.model, updates=updates)
                )
                since = snapshot.created_at
                log.info(
                    "policy %s restored: snapshot v%d, %d updates",
                    stage,
                    snapshot.version,
                    updates,
                )
            self._policies[stage] = policy
            self._saved_at[stage] = policy.updates
            if not relearn:
                continue
            relearned = await self._relearn(stage, policy, since)
            if relearned:
                log.info("policy %s learned %d logged rewards again", stage, relearned)
                await self.snapshot(stage)

    async def _relearn(self, stage: str, policy: VWPolicy, since: datetime | None) -> int:
        async with self._database.connection() as conn:
            rewards = await reward_log.rewards_to_relearn(conn, stage, policy.updates, since)
        if not rewards:
            return 0
        highest = policy.updates
        unmarked: list[tuple[int, int]] = []
        skipped = 0
        for reward in rewards:
            try:
                context = Context.from_json(reward.context)
                update = policy.learn(context, reward.chosen_arm, reward.probability, reward.value)
            except (KeyError, TypeError, ValueError):  # a row no version of us could have written
                skipped += 1
                continue
            if reward.policy_update is None:
                unmarked.append((reward.reward_id, update))
            else:
                highest = max(highest, reward.policy_update)
        # Keep update numbers unique when some logged rewards were lost (a gap).
        policy.advance_to(highest)
        async with self._database.connection() as conn:
            await reward_log.mark_many_learned(conn, unmarked)
        if skipped:
            log.warning(
                "policy %s: skipped %d logged rewards whose decision context cannot be read",
                stage,
                skipped,
            )
        return len(rewards) - skipped

    def get(self, stage: str) -> VWPolicy:
        return self._policies[stage]

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self._policies)

    async def learn(
        self, stage: str, context: Context, arm: str, probability: float, reward: float
    ) -> int:
        """Learn from one reward; returns its update number. A snapshot is taken in the
        background every ``snapshot_every`` updates."""
        policy = self._policies[stage]
        updates = policy.learn(context, arm, probability, reward)
        due = updates - self._saved_at[stage] >= self._snapshot_every
        if self._owner and due and stage not in self._saving:
            task = asyncio.create_task(self._snapshot_quietly(stage))
            self._saving[stage] = task
            task.add_done_callback(lambda _: self._saving.pop(stage, None))
        return updates

    async def _snapshot_quietly(self, stage: str) -> None:
        try:
            await self.snapshot(stage)
        except SignalrouteError as exc:  # the store is down: keep learning, retry later
            log.warning("policy %s: snapshot failed, will retry: %s", stage, exc.message)

    async def snapshot(self, stage: str) -> int | None:
        """Save the stage's policy; returns the snapshot version (None when unchanged)."""
        async with self._save_lock:
            policy = self._policies[stage]
            if policy.updates == self._saved_at[stage] and policy.updates > 0:
                return None
            state = policy.state()
            meta = {"updates": state.updates, "config": asdict(state.config)}
            attributes = {
                **tracing.store_attributes("save_snapshot"),
                "signalroute.stage": stage,
                "signalroute.policy.version": state.updates,
            }
            with tracing.span("signalroute.store.save_snapshot", attributes, root=True):
                async with self._database.connection() as conn:
                    version = await snapshots.save_snapshot(conn, stage, state.model, meta)
            self._saved_at[stage] = state.updates
            self._versions[stage] = version
            return version

    async def close(self) -> None:
        """Snapshot every policy that learned since its last snapshot, then free them."""
        await asyncio.gather(*self._saving.values(), return_exceptions=True)
        for stage in list(self._policies):
            try:
                if self._owner:
                    await self.snapshot(stage)
            finally:
                self._policies[stage].close()
        self._policies.clear()
