"""The deployed policies, one per lifecycle stage, and their snapshots in the store.

A policy is restored from its newest snapshot at start-up, snapshotted every
``snapshot_every`` updates, and once more at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict

from learner.config import PolicyConfig
from learner.context import Context
from learner.vw_policy import PolicyState, VWPolicy
from router.lifecycle.stages import PRE_GENERATION
from store import snapshots
from store.database import Database

__all__ = ["PRE_GENERATION", "PolicyRegistry"]

log = logging.getLogger("signalroute.policies")


class PolicyRegistry:
    """Owns the VW policies of the running service and persists them."""

    def __init__(
        self, database: Database, configs: Mapping[str, PolicyConfig], *, snapshot_every: int = 100
    ) -> None:
        self._database = database
        self._configs = dict(configs)
        self._snapshot_every = snapshot_every
        self._policies: dict[str, VWPolicy] = {}
        self._saved_at: dict[str, int] = {}
        self._save_lock = asyncio.Lock()

    async def load(self) -> None:
        """Restore each stage's newest snapshot, or start it cold."""
        for stage, config in self._configs.items():
            async with self._database.connection() as conn:
                snapshot = await snapshots.latest_snapshot(conn, stage)
            if snapshot is None:
                self._policies[stage] = VWPolicy(stage, config)
                self._saved_at[stage] = 0
                log.info("policy %s starts cold (%s)", stage, config.vw_args())
                continue
            updates = int(snapshot.meta.get("updates", 0))
            self._policies[stage] = VWPolicy.restore(
                PolicyState(name=stage, config=config, model=snapshot.model, updates=updates)
            )
            self._saved_at[stage] = updates
            log.info(
                "policy %s restored: snapshot v%d, %d updates", stage, snapshot.version, updates
            )

    def get(self, stage: str) -> VWPolicy:
        return self._policies[stage]

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self._policies)

    async def learn(
        self, stage: str, context: Context, arm: str, probability: float, reward: float
    ) -> int:
        """Learn from one reward; snapshot when ``snapshot_every`` updates have passed."""
        policy = self._policies[stage]
        updates = policy.learn(context, arm, probability, reward)
        if updates - self._saved_at[stage] >= self._snapshot_every:
            await self.snapshot(stage)
        return updates

    async def snapshot(self, stage: str) -> int | None:
        """Save the stage's policy; returns the snapshot version (None when unchanged)."""
        async with self._save_lock:
            policy = self._policies[stage]
            if policy.updates == self._saved_at[stage] and policy.updates > 0:
                return None
            state = policy.state()
            meta = {"updates": state.updates, "config": asdict(state.config)}
            async with self._database.connection() as conn:
                version = await snapshots.save_snapshot(conn, stage, state.model, meta)
            self._saved_at[stage] = state.updates
            return version

    async def close(self) -> None:
        """Snapshot every policy that learned since its last snapshot, then free them."""
        for stage in list(self._policies):
            try:
                await self.snapshot(stage)
            finally:
                self._policies[stage].close()
        self._policies.clear()
