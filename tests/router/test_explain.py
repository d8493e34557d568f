"""Explaining the deployed policy from the store: snapshots restored, logged decisions
explained, against the real embedded Postgres and real VW."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from features.errors import NotFoundError
from learner.config import PolicyConfig
from learner.context import ArmFeatures, Context
from learner.vw_policy import VWPolicy
from router import explain
from router.settings import Settings
from store import rewards, snapshots
from store.database import Database
from tests.store.factories import a_decision, a_request

CONFIG = PolicyConfig(exploration="epsilon", epsilon=0.2, interactions=("QA",), seed=3)


def context(code: float) -> Context:
    return Context(
        shared={"Q": {"cat_code": code, "language": "en"}},
        arms=tuple(
            ArmFeatures(arm, {"A": {"arm": arm, "log_price": price}, "S": {"error_rate": 0.0}})
            for arm, price in (("coder", 1.0), ("generalist", 2.0))
        ),
    )


def trained_policy() -> VWPolicy:
    policy = VWPolicy("pre", CONFIG)
    for _ in range(30):
        policy.learn(context(1.0), "coder", 0.5, 1.0)
        policy.learn(context(0.0), "generalist", 0.5, 1.0)
        policy.learn(context(1.0), "generalist", 0.5, 0.0)
    return policy


async def save(database: Database, policy: VWPolicy, stage: str = "pre") -> int:
    state = policy.state()
    meta = {"updates": state.updates, "config": asdict(state.config), "from_the_future": 1}
    async with database.connection() as conn:
        return await snapshots.save_snapshot(conn, stage, state.model, meta)


async def test_load_policy_restores_the_newest_snapshot(database: Database) -> None:
    with pytest.raises(NotFoundError, match="no snapshot of the 'pre' policy"):
        await explain.load_policy(database, "pre")
    original = trained_policy()
    try:
        await save(database, VWPolicy("pre", CONFIG))
        version = await save(database, original)
        loaded = await explain.load_policy(database, "pre")
        try:
            assert (loaded.stage, loaded.version) == ("pre", version)
            assert loaded.policy.updates == original.updates
            assert loaded.policy.config == CONFIG  # the unknown meta key is ignored
            assert loaded.policy.pmf(context(1.0)) == original.pmf(context(1.0))
        finally:
            loaded.policy.close()
    finally:
        original.close()


async def test_a_logged_decision_is_explained_with_its_rewards(database: Database) -> None:
    policy = trained_policy()
    logged = context(1.0)
    try:
        async with database.connection() as conn:
            request = await a_request(conn)
            decision = await a_decision(
                conn,
                request.id,
                context=logged.to_json(),
                arms=list(logged.arm_names),
                chosen_arm="coder",
                probability=0.6,
                pmf={"coder": 0.6, "generalist": 0.4},
            )
            await rewards.record_reward(conn, decision_id=decision.id, value=0.8, source="thumbs")
        explained = await explain.explain_decision(database, str(decision.id), policy)
        assert [r.value for r in explained.rewards] == [0.8]
        assert explained.context == logged
        rows = {row["arm"]: row for row in explained.arm_rows()}
        assert rows["coder"]["chosen"] is True
        assert rows["coder"]["logged_probability"] == 0.6
        now = dict(zip(logged.arm_names, policy.pmf(logged), strict=True))
        assert rows["coder"]["probability_now"] == pytest.approx(now["coder"])
        assert rows["coder"]["estimated_reward"] > rows["generalist"]["estimated_reward"]
        terms = {str(r["term"]) for r in explained.explanation.contribution_rows()}
        assert "Q^cat_code*A^arm=coder" in terms

        listed = await explain.stage_decisions(database, "pre")
        assert [d.id for d in listed] == [decision.id]
        assert explain.contexts_of(listed) == [logged]
        named = explain.named_weights(policy, explain.contexts_of(listed))
        assert "A^arm=coder" in named.weights

        with pytest.raises(NotFoundError):
            await explain.explain_decision(database, "00000000-0000-0000-0000-000000000000", policy)
    finally:
        policy.close()


async def test_open_store_opens_the_service_database(database: Database, database_url: str) -> None:
    async with (
        explain.open_store(Settings(database_url=database_url)) as store,
        store.connection() as conn,
    ):
        assert await snapshots.latest_version(conn, "pre") is None
