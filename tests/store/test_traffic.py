"""Traffic aggregates of a window, against the real embedded Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store import requests, rewards, traffic
from store.database import Database
from tests.store.factories import a_decision, a_request

AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


async def seed(database: Database) -> None:
    """Three requests of tenant a (two completed, one failed), one of tenant b; pre and
    post decisions with rewards."""
    async with database.connection() as conn:
        for cost, latency, arm in ((0.01, 100.0, "small"), (0.03, 300.0, "large")):
            request = await a_request(conn, tenant="a")
            pre = await a_decision(
                conn, request.id, chosen_arm=arm, pmf={"small": 0.8, "large": 0.2}
            )
            await rewards.record_reward(conn, decision_id=pre.id, value=0.5, source="immediate")
            await rewards.record_reward(conn, decision_id=pre.id, value=1.0, source="user")
            post = await a_decision(
                conn,
                request.id,
                stage="post",
                arms=["accept", "escalate:large"],
                chosen_arm="accept" if arm == "large" else "escalate:large",
                pmf={"accept": 0.5, "escalate:large": 0.5},
                probability=0.5,
                outcome="accepted" if arm == "large" else "escalated; answer replaced",
            )
            await rewards.record_reward(conn, decision_id=post.id, value=0.25, source="judge")
            await requests.complete_request(
                conn, request.id, output="4", model=arm, cost_usd=cost, latency_ms=latency
            )
        failed = await a_request(conn, tenant="a")
        await a_decision(conn, failed.id, chosen_arm="small")
        await requests.fail_request(conn, failed.id, error="every arm failed")
        other = await a_request(conn, tenant="b")
        await a_decision(conn, other.id, chosen_arm="large")


async def test_totals_count_requests_by_status_and_sum_completed_spend(
    database: Database,
) -> None:
    await seed(database)
    async with database.connection() as conn:
        totals = await traffic.traffic_totals(conn, since=AN_HOUR_AGO)
        only_a = await traffic.traffic_totals(conn, since=AN_HOUR_AGO, tenant="a")
        future = await traffic.traffic_totals(conn, since=datetime.now(UTC) + timedelta(hours=1))
        past = await traffic.traffic_totals(
            conn, since=AN_HOUR_AGO - timedelta(hours=1), until=AN_HOUR_AGO
        )
    assert (totals.requests, totals.completed, totals.failed, totals.in_progress) == (4, 2, 1, 1)
    assert totals.cost_usd == pytest.approx(0.04)
    assert totals.latency_p50_ms == pytest.approx(200.0)
    assert totals.latency_p95_ms == pytest.approx(290.0)
    assert (only_a.requests, only_a.in_progress) == (3, 0)
    assert (future.requests, future.cost_usd, future.latency_p50_ms) == (0, 0.0, None)
    assert past.requests == 0


async def test_stage_arms_count_draws_and_average_each_decisions_mean_reward(
    database: Database,
) -> None:
    await seed(database)
    async with database.connection() as conn:
        arms = await traffic.stage_arms(conn, since=AN_HOUR_AGO)
        only_b = await traffic.stage_arms(conn, since=AN_HOUR_AGO, tenant="b")
    by_key = {(a.stage, a.arm): a for a in arms}
    assert [(a.stage, a.arm) for a in arms] == [
        ("post", "accept"),
        ("post", "escalate:large"),
        ("pre", "large"),
        ("pre", "small"),
    ]
    small = by_key[("pre", "small")]
    assert (small.decisions, small.rewarded) == (2, 1)
    assert small.mean_reward == pytest.approx(0.75)  # its rewards 0.5 and 1.0, averaged first
    large = by_key[("pre", "large")]
    assert (large.decisions, large.rewarded) == (2, 1)
    assert large.mean_reward == pytest.approx(0.75)
    assert by_key[("post", "accept")].mean_reward == pytest.approx(0.25)
    assert [(a.stage, a.arm, a.decisions, a.mean_reward) for a in only_b] == [
        ("pre", "large", 1, None)
    ]


async def test_answering_models_and_stage_outcomes(database: Database) -> None:
    await seed(database)
    async with database.connection() as conn:
        models = await traffic.answering_models(conn, since=AN_HOUR_AGO)
        outcomes = await traffic.stage_outcomes(conn, "post", since=AN_HOUR_AGO)
        pre = await traffic.stage_outcomes(conn, "pre", since=AN_HOUR_AGO, tenant="b")
    assert [(m.model, m.answers) for m in models] == [("large", 1), ("small", 1)]
    assert models[0].cost_usd == pytest.approx(0.03)
    assert models[1].latency_p50_ms == pytest.approx(100.0)
    assert sorted((o.outcome, o.decisions) for o in outcomes) == [
        ("accepted", 1),
        ("escalated; answer replaced", 1),
    ]
    assert [(o.outcome, o.decisions) for o in pre] == [(None, 1)]


async def test_a_reward_that_does_not_count_leaves_the_arms_mean_alone(
    database: Database,
) -> None:
    async with database.connection() as conn:
        request = await a_request(conn, tenant="a")
        decision = await a_decision(conn, request.id, chosen_arm="small")
        await rewards.record_reward(conn, decision_id=decision.id, value=1.0, source="user")
        duplicate, _ = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.0, source="user"
        )
        arms = await traffic.stage_arms(conn, since=AN_HOUR_AGO)
    assert not duplicate.counted
    assert [(a.arm, a.rewarded, a.mean_reward) for a in arms] == [("small", 1, 1.0)]
