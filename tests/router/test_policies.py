"""The policy registry restores each stage from the log, and survives what it cannot read."""

import contextlib
import uuid
from typing import Any

import pytest

from features.errors import StoreError
from learner.config import PolicyConfig
from learner.context import ArmFeatures, Context
from learner.vw_policy import VWPolicy
from router.lifecycle.journal import JournalWriter, PendingRequest
from router.policies import Learned, PolicyRegistry
from router.tenancy import Tenancy
from store import rewards as reward_log
from store.database import Database
from tests.router.lifecycle.test_journal import DONE, ROW, a_journal
from tests.store.factories import a_decision, a_request


async def test_a_logged_context_it_cannot_read_is_skipped_not_fatal(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A decision row whose context is not a context (an old or foreign writer's) must not
    stop the service from starting: the policy relearns from the rest and says what it
    skipped."""
    writer = JournalWriter(database)
    request_id = str(uuid.uuid4())
    writer.log_request(PendingRequest(request_id, "acme", "ann", ROW))
    writer.submit(a_journal(request_id), DONE)  # its context is {"log_tokens": 2.0}
    await writer.drain()
    policies = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)})
    await policies.load()
    try:
        assert policies.get("pre").updates == 0
        assert "skipped 1 logged rewards" in caplog.text
    finally:
        await policies.close()


ARMS = ("cheap", "strong")


def context(x: float = 1.0) -> Context:
    return Context(
        shared={"Q": {"x": x}}, arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in ARMS)
    )


def isolated(**overrides: Any) -> Tenancy:
    return Tenancy(**{"isolated": True, "min_rewards": 0, **overrides})


async def steer(policies: PolicyRegistry, tenant: str, rewards: int) -> None:
    """``rewards`` rewards of 1 for the strong arm from ``tenant`` (a reward of 0 would not
    move a cold VW model: its predicted cost is 0 already)."""
    for _ in range(rewards):
        await policies.learn_for(tenant, "pre", context(), "strong", 0.5, 1.0)


@pytest.mark.parametrize(
    ("tenancy", "moved"), [(isolated(), False), (isolated(shared_tenants={"*"}), True)]
)
async def test_one_tenants_rewards_move_anothers_policy_only_when_they_share(
    database: Database, tenancy: Tenancy, moved: bool
) -> None:
    policies = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)}, tenancy=tenancy)
    await policies.load()
    try:
        async with policies.pinned("beta"):
            beta = policies.serving("pre", "beta")
            before, updates = beta.policy.pmf(context()), beta.policy.updates
        await steer(policies, "acme", 50)
        async with policies.pinned("beta"):
            after = policies.serving("pre", "beta")
            assert (after.policy.pmf(context()) != before) is moved
            assert (after.policy.updates != updates) is moved
            assert after.name == ("pre" if moved else "pre:tenant:beta")
        async with policies.pinned("acme"):
            assert policies.serving("pre", "acme").policy.updates >= 50
    finally:
        await policies.close()


async def test_a_tenant_is_served_by_the_frozen_prior_until_it_has_enough_rewards(
    database: Database,
) -> None:
    policies = PolicyRegistry(
        database, {"pre": PolicyConfig(seed=1)}, tenancy=isolated(min_rewards=3)
    )
    await policies.load()
    try:
        held = [
            await policies.learn_for("acme", "pre", context(), "cheap", 0.5, 0.0) for _ in range(3)
        ]
        prior = policies.serving("pre", "acme")
        graduated = await policies.learn_for("acme", "pre", context(), "cheap", 0.5, 0.0)
        own = policies.serving("pre", "acme")
        other = policies.serving("pre", "beta")
    finally:
        await policies.close()
    assert held == [Learned("pre:prior", None)] * 3
    assert (prior.name, prior.learns, prior.policy.updates) == ("pre:prior", False, 0)
    assert graduated == Learned("pre:tenant:acme", 1)
    assert (own.name, own.learns) == ("pre:tenant:acme", True)
    assert (other.name, other.policy.updates) == ("pre:prior", 0)  # the prior never learned


async def test_a_reward_not_in_the_log_never_counts_towards_a_tenants_own_policy(
    database: Database,
) -> None:
    policies = PolicyRegistry(
        database, {"pre": PolicyConfig(seed=1)}, tenancy=isolated(min_rewards=2)
    )
    await policies.load()
    try:
        for _ in range(5):  # counterfactuals: learned only by a policy that learns now
            await policies.learn_for("acme", "pre", context(), "cheap", 0.5, 0.0, logged=False)
        still_prior = await policies.learn_for("acme", "pre", context(), "cheap", 0.5, 0.0)
        await policies.learn_for("acme", "pre", context(), "cheap", 0.5, 0.0)
        graduated = await policies.learn_for("acme", "pre", context(), "cheap", 0.5, 0.0)
    finally:
        await policies.close()
    assert still_prior == Learned("pre:prior", None)  # five counterfactuals counted nothing
    assert graduated.policy_name == "pre:tenant:acme"


async def test_idle_tenants_are_evicted_and_restored_from_their_snapshots(
    database: Database,
) -> None:
    tenancy = isolated(max_resident_policies=2)
    policies = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)}, tenancy=tenancy)
    await policies.load()
    try:
        for index, tenant in enumerate(("t0", "t1", "t2", "t3")):
            await steer(policies, tenant, 5 + index)
        assert policies.resident() == (2, 2)  # t0 and t1 were snapshotted and freed
        async with policies.pinned("t0"):
            restored = policies.serving("pre", "t0")
            assert restored.name == "pre:tenant:t0"
            assert restored.policy.updates == 5
            # The same model as a tenant that learned the same rewards without eviction.
            twin = VWPolicy("twin", PolicyConfig(seed=1))
            for _ in range(5):
                twin.learn(context(), "strong", 0.5, 1.0)
            assert restored.policy.pmf(context(2.0)) == twin.pmf(context(2.0))
            twin.close()
        assert policies.resident() == (2, 2)
    finally:
        await policies.close()


async def log_reward(database: Database, tenant: str, value: float, source: str = "user") -> int:
    async with database.connection() as conn:
        request = await a_request(conn, tenant=tenant)
        decision = await a_decision(
            conn,
            request.id,
            context=context().to_json(),
            arms=list(ARMS),
            chosen_arm="cheap",
            probability=0.5,
            pmf={"cheap": 0.5, "strong": 0.5},
        )
        record, _ = await reward_log.record_reward(
            conn, decision_id=decision.id, value=value, source=source
        )
    return record.id


async def marks(database: Database) -> list[tuple[int, str | None, int | None]]:
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT id, policy_name, policy_update FROM rewards ORDER BY id"
        )
        return [(int(i), name, update) for i, name, update in await cursor.fetchall()]


async def test_the_learner_learns_each_logged_reward_into_its_tenants_policy(
    database: Database,
) -> None:
    """What ``signalroute learner`` does: shared tenants' rewards to the shared policy, an
    isolated tenant's held while the prior serves it, then learned by its own policy."""
    tenancy = isolated(min_rewards=2, shared_tenants={"pooled"})
    learner = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)}, tenancy=tenancy)
    await learner.load()
    try:
        ids = [await log_reward(database, t, 0.0) for t in ("acme", "pooled", "acme")]
        assert await learner.learn_unlearned() == 3
        first = await marks(database)
        ids.append(await log_reward(database, "acme", 1.0))
        assert await learner.learn_unlearned() == 1
        assert await learner.learn_unlearned() == 0  # nothing is taken twice
        second = await marks(database)
        saved = await learner.snapshot_all()
    finally:
        await learner.close()
    assert first == [(ids[0], "pre:prior", None), (ids[1], "pre", 1), (ids[2], "pre:prior", None)]
    # acme reached two rewards: its own policy learned the held ones, then the new one.
    assert second == [
        (ids[0], "pre:tenant:acme", 1),
        (ids[1], "pre", 1),
        (ids[2], "pre:tenant:acme", 2),
        (ids[3], "pre:tenant:acme", 3),
    ]
    assert set(saved) <= {"pre", "pre:tenant:acme"}


async def test_a_replica_follows_a_tenants_own_policy_once_the_learner_publishes_it(
    database: Database,
) -> None:
    tenancy = isolated(min_rewards=1)
    learner = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)}, tenancy=tenancy)
    replica = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)}, tenancy=tenancy, owner=False)
    await learner.load()
    await replica.load(relearn=False)
    try:
        async with replica.pinned("acme"):
            assert replica.serving("pre", "acme").name == "pre:prior"
        for value in (0.0, 0.0, 1.0):
            await log_reward(database, "acme", value)
        await learner.learn_unlearned()
        await learner.snapshot_all()
        changed = await replica.refresh()
        async with replica.pinned("acme"), learner.pinned("acme"):
            served = replica.serving("pre", "acme")
            mine = learner.serving("pre", "acme")
            assert served.policy.pmf(context()) == mine.policy.pmf(context())
        assert "pre:tenant:acme" in changed
        assert (served.name, served.policy.updates) == ("pre:tenant:acme", 3)
    finally:
        await learner.close()
        await replica.close()


async def test_a_restarted_service_restores_a_tenants_policy_and_learns_what_it_lacks(
    database: Database,
) -> None:
    tenancy = isolated()
    first = PolicyRegistry(
        database, {"pre": PolicyConfig(seed=1)}, tenancy=tenancy, snapshot_every=1000
    )
    await first.load()
    for _ in range(3):
        reward_id = await log_reward(database, "acme", 0.0)
        learned = await first.learn_for(
            "acme", "pre", context(), "cheap", 0.5, 0.0, reward_id=reward_id
        )
        async with database.connection() as conn:
            await reward_log.mark_learned(conn, reward_id, learned.policy_name, learned.update)
    async with first.pinned("acme"):
        expected = first.serving("pre", "acme").policy.pmf(context())
    # A crash: ``first`` is never closed, so nothing is snapshotted at shutdown (its only
    # snapshot of acme's policy is the one taken when acme got it, with 0 updates).
    second = PolicyRegistry(database, {"pre": PolicyConfig(seed=1)}, tenancy=tenancy)
    await second.load()
    try:
        async with second.pinned("acme"):
            restored = second.serving("pre", "acme")
            assert restored.policy.updates == 3
            assert restored.policy.pmf(context()) == expected
    finally:
        await second.close()


async def test_with_the_store_down_an_unloaded_tenant_is_served_by_the_prior(
    database_url: str,
) -> None:
    store = await Database.connect(database_url)
    policies = PolicyRegistry(store, {"pre": PolicyConfig(seed=1)}, tenancy=isolated())
    await policies.load()
    await store.close()
    try:
        async with policies.pinned("acme"):  # routing goes on
            served = policies.serving("pre", "acme")
        learned = await policies.learn_for("acme", "pre", context(), "strong", 0.5, 1.0)
    finally:
        with contextlib.suppress(StoreError):  # its last snapshot cannot be written
            await policies.close()
    assert (served.name, served.learns) == ("pre:prior", False)
    assert learned == Learned("pre:prior", None)  # held, for its own policy to learn later
