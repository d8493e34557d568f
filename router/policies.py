"""The deployed policies: per lifecycle stage a shared policy, and with isolated tenants
(``router.tenancy``) a frozen prior and each tenant's own policy; and their snapshots.

A policy is restored from its newest snapshot (the shared ones at start-up, a tenant's when
it is next needed), learns again the rewards logged after that snapshot, is snapshotted every
``snapshot_every`` updates, and once more at shutdown or when its tenant is evicted.

Every reward is learned by one policy at most, and marked with that policy's name and the
update number it became (``store.rewards``), so a restart or a restore learns exactly what
the snapshot lacks, whichever process learned it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime

from features.errors import SignalrouteError, StoreError
from learner.anchor import Evidence
from learner.config import PolicyConfig
from learner.context import Context
from learner.vw_policy import PolicyState, VWPolicy
from router import tracing
from router.lifecycle.stages import PRE_GENERATION
from router.tenancy import SHARED, Tenancy, prior_name, shared_name, tenant_name
from router.tenant_cache import TenantCache, TenantState
from store import rewards as reward_log
from store import snapshots
from store.database import Database
from store.records import LearnableReward

__all__ = ["PRE_GENERATION", "Learned", "PolicyRegistry", "Served"]

log = logging.getLogger("signalroute.policies")


@dataclass(frozen=True)
class Served:
    """The policy a decision is drawn from, and the name its decision logs."""

    policy: VWPolicy
    name: str
    learns: bool
    """False for a prior: frozen, nobody's rewards update it."""


@dataclass(frozen=True)
class Learned:
    """Where a reward went: learned as ``update`` of policy ``policy_name``, or (``update``
    None) held under a prior's name for its tenant's own policy to learn later."""

    policy_name: str
    update: int | None


class PolicyRegistry:
    """Owns the VW policies of the running service and persists them."""

    def __init__(
        self,
        database: Database,
        configs: Mapping[str, PolicyConfig],
        *,
        snapshot_every: int = 100,
        owner: bool = True,
        tenancy: Tenancy = SHARED,
    ) -> None:
        """``owner`` False makes a read-only replica: it never snapshots (the learner owns
        the snapshots) and follows them with ``refresh``."""
        self._database = database
        self._configs = dict(configs)
        self._snapshot_every = snapshot_every
        self._owner = owner
        self._tenancy = tenancy
        self._policies: dict[str, VWPolicy] = {}
        self._priors: dict[str, VWPolicy] = {}
        self._prior_models: dict[str, bytes] = {}
        self._tenants = TenantCache(
            max_policies=tenancy.max_resident_policies, max_tenants=tenancy.max_tenants
        )
        self._saved_at: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._save_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._evidence: dict[str, Evidence] = {}

    @property
    def tenancy(self) -> Tenancy:
        return self._tenancy

    def evidence(self, stage: str, tenant: str | None = None) -> Evidence:
        """The rewards a rule-anchored stage's decisions earned, per bucket and action
        (``learner.anchor``), gathered by this process since it started (since an isolated
        tenant was last loaded): after a restart a stage follows its rule until the evidence
        has grown again. An isolated tenant's evidence holds its own rewards only."""
        if self._tenancy.shares(tenant):
            return self._evidence.setdefault(stage, Evidence())
        assert tenant is not None
        state = self._tenants.peek(tenant)
        if state is None:  # not loaded: evidence that lives as long as this call
            return Evidence()
        return state.evidence.setdefault(stage, Evidence())

    def version(self, stage: str, tenant: str | None = None) -> int:
        """The snapshot version the policy serving ``tenant`` at ``stage`` was restored
        from or last saved as (0: none)."""
        name = shared_name(stage)
        if not self._tenancy.shares(tenant):
            assert tenant is not None
            state = self._tenants.peek(tenant)
            if state is None or stage not in state.own:
                return self._tenancy.prior_version or 0
            name = tenant_name(stage, tenant)
        return self._versions.get(name, 0)

    # --- loading -------------------------------------------------------------------------

    async def load(self, *, relearn: bool = True) -> None:
        """Restore each stage's newest snapshot (or start cold), then (``relearn``) learn
        again the rewards logged after it, so a crash loses no learning and applies no reward
        twice; with isolated tenants, also load each stage's prior."""
        for stage, config in self._configs.items():
            async with self._database.connection() as conn:
                snapshot = await snapshots.latest_snapshot(conn, stage)
            if snapshot is None:
                policy = VWPolicy(stage, config)
                since = None
                log.info("policy %s starts cold (%s)", stage, config.vw_args())
            else:
                self._versions[stage] = snapshot.version
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
            if self._tenancy.isolated:
                await self._load_prior(stage, config)
            if not relearn:
                continue
            before = policy.updates
            await self._relearn(stage, stage, policy, since, tenants=self._tenancy.sharing())
            if policy.updates != before:
                log.info(
                    "policy %s learned logged rewards again: now %d updates",
                    stage,
                    policy.updates,
                )
                await self.snapshot(stage)

    async def _load_prior(self, stage: str, config: PolicyConfig) -> None:
        version = self._tenancy.prior_version
        name = prior_name(stage)
        if version is None:
            prior = VWPolicy(name, config)
        else:
            async with self._database.connection() as conn:
                snapshot = await snapshots.snapshot_at(conn, shared_name(stage), version)
            if snapshot is None:
                raise SignalrouteError(
                    f"the tenants' prior is pinned to snapshot v{version} of policy {stage!r}, "
                    "which the store does not hold: set SIGNALROUTE_TENANT_PRIOR_VERSION to a "
                    "version that exists, or unset it for a cold prior"
                )
            prior = VWPolicy.restore(
                PolicyState(
                    name=name,
                    config=config,
                    model=snapshot.model,
                    updates=int(snapshot.meta.get("updates", 0)),
                )
            )
        self._priors[stage] = prior
        self._prior_models[stage] = prior.state().model

    async def _relearn(
        self,
        name: str,
        stage: str,
        policy: VWPolicy,
        since: datetime | None,
        *,
        tenants: Sequence[str] | None,
        held: str | None = None,
    ) -> dict[int, tuple[str, int]]:
        """Learn what ``policy`` (saved as ``name``) lacks; returns reward id -> (name,
        update) of the rewards it learned that no policy had learned before."""
        async with self._database.connection() as conn:
            rewards = await reward_log.rewards_to_relearn(
                conn,
                stage,
                policy.updates,
                since,
                policy_name=name,
                tenants=tenants,
                held=held,
            )
        return await self._learn_rows(name, policy, rewards)

    async def _learn_rows(
        self, name: str, policy: VWPolicy, rewards: Sequence[LearnableReward]
    ) -> dict[int, tuple[str, int]]:
        if not rewards:
            return {}
        highest = policy.updates
        unmarked: list[tuple[int, str, int | None]] = []
        learned: dict[int, tuple[str, int]] = {}
        skipped = 0
        for reward in rewards:
            try:
                context = Context.from_json(reward.context)
                update = policy.learn(context, reward.chosen_arm, reward.probability, reward.value)
            except (KeyError, TypeError, ValueError):  # a row no version of us could have written
                skipped += 1
                continue
            if reward.policy_update is None:
                unmarked.append((reward.reward_id, name, update))
                learned[reward.reward_id] = (name, update)
            else:
                highest = max(highest, reward.policy_update)
        # Keep update numbers unique when some logged rewards were lost (a gap).
        policy.advance_to(highest)
        async with self._database.connection() as conn:
            await reward_log.mark_many_learned(conn, unmarked)
        if skipped:
            log.warning(
                "policy %s: skipped %d logged rewards whose decision context cannot be read",
                name,
                skipped,
            )
        return learned

    # --- tenants ---------------------------------------------------------------------------

    @asynccontextmanager
    async def pinned(self, tenant: str | None) -> AsyncIterator[None]:
        """Hold ``tenant``'s policies in memory for the block (a request's life): loaded
        first when they are not, never evicted while pinned. When the store cannot load
        them, the block runs with the prior serving the tenant (routing goes on)."""
        if self._tenancy.shares(tenant):
            yield
            return
        assert tenant is not None
        try:
            state = await self._state(tenant)
        except StoreError as exc:
            log.warning("tenant %r: policies not loaded, the prior serves: %s", tenant, exc)
            yield
            return
        state.pins += 1
        try:
            yield
        finally:
            state.pins -= 1
            await self._evict_excess()

    async def _state(self, tenant: str) -> TenantState:
        state = self._tenants.get(tenant)
        if state is not None:
            return state
        async with self._load_lock:
            state = self._tenants.get(tenant)
            if state is None:
                state = await self._load_tenant(tenant)
                self._tenants.put(state)
        return state

    async def _load_tenant(self, tenant: str) -> TenantState:
        """Restore the tenant's own policies from their snapshots (and, as the owner, learn
        what they lack); count the rewards of the stages the prior serves, and (as the owner)
        give the tenant its own policy where it has ``min_rewards`` of them."""
        state = TenantState(tenant)
        for stage, config in self._configs.items():
            name = tenant_name(stage, tenant)
            async with self._database.connection() as conn:
                snapshot = await snapshots.latest_snapshot(conn, name)
                count = 0
                if snapshot is None:
                    count = await reward_log.count_taken(conn, stage, tenant)
            if snapshot is None:
                state.counts[stage] = count
                if self._owner and count >= self._tenancy.min_rewards:
                    await self._graduate(state, stage)
                continue
            updates = int(snapshot.meta.get("updates", 0))
            policy = VWPolicy.restore(
                PolicyState(name=name, config=config, model=snapshot.model, updates=updates)
            )
            self._versions[name] = snapshot.version
            self._saved_at[name] = updates
            state.own[stage] = policy
            if self._owner:
                state.relearned.update(
                    await self._relearn(
                        name,
                        stage,
                        policy,
                        snapshot.created_at,
                        tenants=[tenant],
                        held=prior_name(stage),
                    )
                )
        return state

    async def _graduate(self, state: TenantState, stage: str) -> VWPolicy:
        """Give the tenant its own policy of ``stage``: a copy of the prior that learns the
        tenant's logged rewards, in order, then is snapshotted (so replicas and restarts
        find it)."""
        name = tenant_name(stage, state.tenant)
        policy = VWPolicy.restore(
            PolicyState(
                name=name,
                config=self._configs[stage],
                model=self._prior_models[stage],
                updates=0,
            )
        )
        state.relearned.update(
            await self._relearn(
                name, stage, policy, None, tenants=[state.tenant], held=prior_name(stage)
            )
        )
        self._tenants.adopt(state, stage, policy)
        state.counts.pop(stage, None)
        log.info(
            "tenant %r has its own %s policy now (%d rewards learned)",
            state.tenant,
            stage,
            policy.updates,
        )
        await self._save(name, policy, tenant=state.tenant)
        return policy

    async def _evict_excess(self) -> None:
        for state in self._tenants.excess():
            try:
                if self._owner:
                    for stage, policy in state.own.items():
                        name = tenant_name(stage, state.tenant)
                        saving = self._saving.get(name)
                        if saving is not None:
                            await asyncio.gather(saving, return_exceptions=True)
                        await self._save(name, policy, tenant=state.tenant)
            except SignalrouteError as exc:  # its rewards are marked: a restore relearns them
                log.warning("tenant %r: snapshot before eviction failed: %s", state.tenant, exc)
            finally:
                for stage in state.own:
                    name = tenant_name(stage, state.tenant)
                    self._saved_at.pop(name, None)
                    self._versions.pop(name, None)
                state.close()

    def resident(self) -> tuple[int, int]:
        """(tenants held, own tenant policies held) in memory now."""
        return len(self._tenants), self._tenants.resident_policies()

    # --- serving and learning --------------------------------------------------------------

    def get(self, stage: str) -> VWPolicy:
        """The stage's shared policy."""
        return self._policies[stage]

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self._policies)

    def serving(self, stage: str, tenant: str | None = None) -> Served:
        """The policy ``tenant``'s decisions at ``stage`` are drawn from now: the shared one,
        the tenant's own, or the prior (also for an isolated tenant that is not pinned)."""
        if self._tenancy.shares(tenant):
            return Served(self._policies[stage], shared_name(stage), True)
        assert tenant is not None
        state = self._tenants.peek(tenant)
        own = None if state is None else state.own.get(stage)
        if own is not None:
            return Served(own, tenant_name(stage, tenant), True)
        return Served(self._priors[stage], prior_name(stage), False)

    async def learn(
        self, stage: str, context: Context, arm: str, probability: float, reward: float
    ) -> int:
        """The shared policy learns one reward; returns its update number. A snapshot is
        taken in the background every ``snapshot_every`` updates."""
        policy = self._policies[stage]
        updates = policy.learn(context, arm, probability, reward)
        self._snapshot_if_due(stage, policy, None)
        return updates

    async def learn_for(
        self,
        tenant: str | None,
        stage: str,
        context: Context,
        arm: str,
        probability: float,
        reward: float,
        *,
        reward_id: int | None = None,
        logged: bool = True,
    ) -> Learned:
        """Learn one reward of ``tenant``'s decision into the policy its tenant learns with:
        the shared one, its own, or none yet (held, counted towards its own policy).
        ``reward_id`` (when the reward is already logged) keeps a reward its tenant's newly
        restored policy learned from the log from being learned twice. ``logged=False``: a
        reward that is not in the log (a counterfactual) is learned by a policy that learns
        now, but never held or counted towards a tenant's own policy, which is built from the
        log."""
        if self._tenancy.shares(tenant):
            update = await self.learn(stage, context, arm, probability, reward)
            return Learned(shared_name(stage), update)
        assert tenant is not None
        try:
            state = await self._state(tenant)
        except StoreError as exc:  # held: its own policy learns it from the log later
            log.warning("tenant %r: policies not loaded, reward held: %s", tenant, exc)
            return Learned(prior_name(stage), None)
        state.pins += 1
        try:
            own = state.own.get(stage)
            if own is None and state.counts.get(stage, 0) >= self._tenancy.min_rewards:
                try:
                    async with self._load_lock:
                        own = state.own.get(stage) or await self._graduate(state, stage)
                except StoreError as exc:  # it gets its own policy with a later reward
                    log.warning("tenant %r: no own %s policy yet: %s", tenant, stage, exc)
            if reward_id is not None and reward_id in state.relearned:
                name, update = state.relearned.pop(reward_id)
                return Learned(name, update)
            if own is None:
                if logged:
                    state.counts[stage] = state.counts.get(stage, 0) + 1
                return Learned(prior_name(stage), None)
            name = tenant_name(stage, tenant)
            update = own.learn(context, arm, probability, reward)
            self._snapshot_if_due(name, own, tenant)
            return Learned(name, update)
        finally:
            state.pins -= 1
            await self._evict_excess()

    async def learn_unlearned(self, *, limit: int = 1000) -> int:
        """The learner process: learn the oldest ``limit`` logged rewards no policy has
        learned or held yet, each into its tenant's policy, and mark them (a reward whose
        decision context cannot be read is marked ``unreadable``, so it is not taken again);
        returns how many were taken."""
        async with self._database.connection(transaction=False) as conn:
            rewards = await reward_log.unlearned_rewards(conn, self.stages, limit=limit)
        marks: list[tuple[int, str, int | None]] = []
        for reward in rewards:
            try:
                context = Context.from_json(reward.context)
                learned = await self.learn_for(
                    reward.tenant,
                    reward.stage,
                    context,
                    reward.chosen_arm,
                    reward.probability,
                    reward.value,
                    reward_id=reward.reward_id,
                )
            except (KeyError, TypeError, ValueError):
                log.warning("reward %d: its decision context cannot be read", reward.reward_id)
                marks.append((reward.reward_id, "unreadable", None))
                continue
            marks.append((reward.reward_id, learned.policy_name, learned.update))
        async with self._database.connection() as conn:
            await reward_log.mark_many_learned(conn, marks)
        return len(rewards)

    # --- snapshots -------------------------------------------------------------------------

    def _snapshot_if_due(self, name: str, policy: VWPolicy, tenant: str | None) -> None:
        due = policy.updates - self._saved_at.get(name, 0) >= self._snapshot_every
        if self._owner and due and name not in self._saving:
            task = asyncio.create_task(self._save_quietly(name, policy, tenant))
            self._saving[name] = task
            task.add_done_callback(lambda _: self._saving.pop(name, None))

    async def _save_quietly(self, name: str, policy: VWPolicy, tenant: str | None) -> None:
        try:
            await self._save(name, policy, tenant=tenant)
        except SignalrouteError as exc:  # the store is down: keep learning, retry later
            log.warning("policy %s: snapshot failed, will retry: %s", name, exc.message)

    async def _save(self, name: str, policy: VWPolicy, *, tenant: str | None) -> int | None:
        """Save ``policy`` as ``name``; returns the snapshot version (None when unchanged)."""
        async with self._save_lock:
            if policy.updates == self._saved_at.get(name) and policy.updates > 0:
                return None
            state = policy.state()
            meta = {"updates": state.updates, "config": asdict(state.config)}
            if tenant is not None:
                meta["tenant"] = tenant
            attributes = {
                **tracing.store_attributes("save_snapshot"),
                "signalroute.stage": name.split(":", 1)[0],
                "signalroute.policy.name": name,
                "signalroute.policy.version": state.updates,
            }
            with tracing.span("signalroute.store.save_snapshot", attributes, root=True):
                async with self._database.connection() as conn:
                    version = await snapshots.save_snapshot(conn, name, state.model, meta)
                    if tenant is not None:
                        await snapshots.prune(conn, name, self._tenancy.snapshots_kept)
            self._saved_at[name] = state.updates
            self._versions[name] = version
            return version

    async def snapshot(self, stage: str) -> int | None:
        """Save the stage's shared policy; returns the snapshot version (None when
        unchanged)."""
        return await self._save(shared_name(stage), self._policies[stage], tenant=None)

    async def snapshot_all(self) -> dict[str, int]:
        """Save every policy held that learned since its last snapshot; returns the new
        version of each saved, by name."""
        saved: dict[str, int] = {}
        for stage in self.stages:
            version = await self.snapshot(stage)
            if version is not None:
                saved[shared_name(stage)] = version
        for state in self._tenants.states():
            for stage, policy in list(state.own.items()):
                name = tenant_name(stage, state.tenant)
                if policy.updates == self._saved_at.get(name):
                    continue
                version = await self._save(name, policy, tenant=state.tenant)
                if version is not None:
                    saved[name] = version
        return saved

    async def refresh(self) -> list[str]:
        """Replicas: adopt every newer snapshot of the shared policies and of the held
        tenants' own policies (a tenant that got its own policy included); returns the names
        of the policies that changed."""
        names: dict[str, tuple[str, str | None]] = {
            shared_name(stage): (stage, None) for stage in self._configs
        }
        states = {state.tenant: state for state in self._tenants.states()}
        for held in states:
            names.update({tenant_name(stage, held): (stage, held) for stage in self._configs})
        async with self._database.connection(transaction=False) as conn:
            versions = await snapshots.latest_versions(conn, list(names))
        changed = []
        for name, version in versions.items():
            if version <= self._versions.get(name, 0):
                continue
            stage, owner = names[name]
            async with self._database.connection(transaction=False) as conn:
                snapshot = await snapshots.snapshot_at(conn, name, version)
            if snapshot is None:
                continue
            updates = int(snapshot.meta.get("updates", 0))
            policy = VWPolicy.restore(
                PolicyState(
                    name=name, config=self._configs[stage], model=snapshot.model, updates=updates
                )
            )
            if owner is None:
                old = self._policies.get(stage)
                self._policies[stage] = policy
            else:
                old = self._tenants.adopt(states[owner], stage, policy)
            self._versions[name] = snapshot.version
            self._saved_at[name] = updates
            if old is not None:
                old.close()
            changed.append(name)
        return changed

    async def close(self) -> None:
        """Snapshot every policy that learned since its last snapshot, then free them."""
        await asyncio.gather(*self._saving.values(), return_exceptions=True)
        try:
            if self._owner:
                await self.snapshot_all()
        finally:
            for policy in [*self._policies.values(), *self._priors.values()]:
                policy.close()
            for state in self._tenants.states():
                state.close()
            self._policies.clear()
            self._priors.clear()
