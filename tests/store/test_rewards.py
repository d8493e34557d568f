"""Rewards stay in [0, 1] and an idempotency key records a reward at most once."""

from __future__ import annotations

import uuid

import pytest

from features.errors import ConflictError, NotFoundError, RequestError
from store import rewards
from store.database import Database
from tests.store.factories import a_decision, a_request


@pytest.mark.parametrize("value", [1.5, -0.01])
async def test_a_reward_outside_0_1_is_rejected(database: Database, value: float) -> None:
    async with database.connection() as conn:
        decision = await a_decision(conn, (await a_request(conn)).id)
        with pytest.raises(RequestError, match=r"reward value must be in \[0, 1\]"):
            await rewards.record_reward(conn, decision_id=decision.id, value=value, source="judge")


async def test_record_and_list(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        decision = await a_decision(conn, request.id)
        escalation = await a_decision(conn, request.id, stage="post", chosen_arm="large")
        first, created = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.0, source="validator"
        )
        second, _ = await rewards.record_reward(
            conn, decision_id=str(decision.id), value=1.0, source="judge"
        )
        third, _ = await rewards.record_reward(
            conn, decision_id=escalation.id, value=0.5, source="user"
        )

        for_decision = await rewards.list_rewards_for_decision(conn, decision.id)
        for_request = await rewards.list_rewards_for_request(conn, request.id)

    assert created
    assert (first.decision_id, first.value, first.source) == (decision.id, 0.0, "validator")
    assert first.idempotency_key is None
    assert for_decision == [first, second]
    assert for_request == [first, second, third]


async def test_the_same_key_records_once(database: Database) -> None:
    async with database.connection() as conn:
        decision = await a_decision(conn, (await a_request(conn)).id)
        first, created = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.75, source="judge", idempotency_key="judge:1"
        )
        again, created_again = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.75, source="judge", idempotency_key="judge:1"
        )
        listed = await rewards.list_rewards_for_decision(conn, decision.id)

    assert created
    assert not created_again
    assert again == first
    assert listed == [first]


async def test_the_same_key_for_another_decision_or_value_conflicts(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        decision = await a_decision(conn, request.id)
        other = await a_decision(conn, request.id, stage="post")
        await rewards.record_reward(
            conn, decision_id=decision.id, value=0.75, source="judge", idempotency_key="k"
        )

        with pytest.raises(ConflictError, match="already used for decision"):
            await rewards.record_reward(
                conn, decision_id=decision.id, value=0.25, source="judge", idempotency_key="k"
            )
        with pytest.raises(ConflictError, match="already used for decision"):
            await rewards.record_reward(
                conn, decision_id=other.id, value=0.75, source="judge", idempotency_key="k"
            )


async def test_a_reward_needs_an_existing_decision(database: Database) -> None:
    async with database.connection() as conn:
        with pytest.raises(NotFoundError, match='not present in table "decisions"'):
            await rewards.record_reward(conn, decision_id=uuid.uuid4(), value=1.0, source="judge")


async def test_recent_reward_averages_the_last_decisions_of_a_stage(database: Database) -> None:
    async with database.connection() as conn:
        for tenant, values in [("a", [0.2, 0.4]), ("a", [1.0]), ("b", [0.0]), ("a", [])]:
            decision = await a_decision(conn, (await a_request(conn, tenant=tenant)).id)
            for value, source in zip(values, ("judge", "user"), strict=False):
                await rewards.record_reward(
                    conn, decision_id=decision.id, value=value, source=source
                )
        await a_decision(conn, (await a_request(conn)).id, stage="post")

        every = await rewards.recent_reward(conn, stage="pre", window=10)
        last_two = await rewards.recent_reward(conn, stage="pre", window=2)
        tenant_a = await rewards.recent_reward(conn, stage="pre", window=10, tenant="a")
        nothing = await rewards.recent_reward(conn, stage="post", window=10)

    # per decision: 0.3, 1.0, 0.0 and one without a reward (left out)
    assert every.decisions == 3
    assert every.mean == pytest.approx((0.3 + 1.0 + 0.0) / 3)
    assert last_two.decisions == 1
    assert last_two.mean == pytest.approx(0.0)
    assert tenant_a.decisions == 2
    assert tenant_a.mean == pytest.approx(0.65)
    assert (nothing.decisions, nothing.mean, nothing.window) == (0, None, 10)


async def test_rewards_marked_learned_are_not_learned_again(database: Database) -> None:
    async with database.connection() as conn:
        decision = await a_decision(conn, (await a_request(conn)).id)
        recorded = [
            (await rewards.record_reward(conn, decision_id=decision.id, value=v, source=s))[0]
            for v, s in ((0.0, "judge"), (0.5, "user"), (1.0, "thumbs"))
        ]
        await rewards.mark_many_learned(
            conn, [(recorded[0].id, "pre", 7), (recorded[2].id, "pre", 8)]
        )
        await rewards.mark_many_learned(conn, [])

        pending = await rewards.rewards_to_relearn(conn, "pre", after_update=8, since=None)
        relearned = await rewards.rewards_to_relearn(conn, "pre", after_update=6, since=None)

    assert [r.reward_id for r in pending] == [recorded[1].id]
    assert [(r.reward_id, r.policy_update) for r in relearned] == [
        (recorded[0].id, 7),
        (recorded[2].id, 8),
        (recorded[1].id, None),
    ]


async def test_a_second_reward_of_a_source_is_recorded_but_not_counted(database: Database) -> None:
    async with database.connection() as conn:
        decision = await a_decision(conn, (await a_request(conn)).id)
        first, _ = await rewards.record_reward(
            conn, decision_id=decision.id, value=1.0, source="user", idempotency_key="a"
        )
        again, created = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.0, source="user", idempotency_key="b"
        )
        unkeyed, _ = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.0, source="user"
        )
        judged, _ = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.5, source="judge"
        )
        counted = await rewards.counted_reward(conn, decision.id, "user")
        pending = await rewards.unlearned_rewards(conn, ["pre"])

    assert created
    assert (first.counted, again.counted, unkeyed.counted, judged.counted) == (
        True,
        False,
        False,
        True,
    )
    assert counted == first.id
    assert [r.reward_id for r in pending] == [first.id, judged.id]  # what a learner takes


async def test_rewards_taken_for_a_tenant_are_counted_per_stage(database: Database) -> None:
    async with database.connection() as conn:
        for tenant in ("acme", "acme", "beta"):
            decision = await a_decision(conn, (await a_request(conn, tenant=tenant)).id)
            record, _ = await rewards.record_reward(
                conn, decision_id=decision.id, value=1.0, source="user"
            )
            await rewards.mark_learned(conn, record.id, "pre:prior", None)
        untaken = await a_decision(conn, (await a_request(conn, tenant="acme")).id)
        await rewards.record_reward(conn, decision_id=untaken.id, value=1.0, source="user")

        acme = await rewards.count_taken(conn, "pre", "acme")
        beta = await rewards.count_taken(conn, "pre", "beta")
        other_stage = await rewards.count_taken(conn, "post", "acme")
        held = await rewards.rewards_to_relearn(
            conn, "pre", 0, None, policy_name="pre:tenant:acme", tenants=["acme"], held="pre:prior"
        )
    assert (acme, beta, other_stage) == (2, 1, 0)
    assert len(held) == 3  # two held for acme, and one nothing has taken yet
    assert {r.tenant for r in held} == {"acme"}
