"""Traffic summaries for the dashboard, and the recent decisions a policy is re-scored on,
over rows written the way the router writes them (a batch)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection

from store import activity, decisions, requests, rewards
from store.batches import Batch, write_batch
from store.database import Database


async def routed(
    conn: AsyncConnection[Any],
    *,
    tenant: str,
    arm: str,
    cost_usd: float,
    latency_ms: float,
    reward: float | None,
    session: str | None = None,
    text: str = "What is 2 + 2?",
) -> uuid.UUID:
    """A completed request with one 'pre' decision (and its reward), written as a batch."""
    request = await requests.insert_request(
        conn,
        messages=[{"role": "user", "content": text}],
        params={},
        tenant=tenant,
        session_id=session,
    )
    decision_id = uuid.uuid4()
    batch = Batch()
    batch.decision(
        decision_id=decision_id,
        request_id=request.id,
        stage="pre",
        context={"shared": {"Q": {"x": 1.0}}, "arms": [{"arm": arm, "namespaces": {}}]},
        arms=[arm],
        chosen_arm=arm,
        probability=1.0,
        pmf={arm: 1.0},
        policy_name="pre",
        policy_version=1,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
    )
    if reward is not None:
        batch.reward(
            decision_id=decision_id,
            value=reward,
            source="immediate",
            idempotency_key=str(uuid.uuid4()),
            policy_update=None,
        )
    batch.complete(
        request.id,
        output="4",
        model=arm,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        trace={"components": [], "assessment": {"quality": 1.0}, "timings": {}},
    )
    await write_batch(conn, batch)
    return request.id


async def test_traffic_counts_decisions_per_bucket_stage_and_arm(database: Database) -> None:
    async with database.connection() as conn:
        await routed(conn, tenant="acme", arm="small", cost_usd=0.001, latency_ms=10, reward=1.0)
        await routed(conn, tenant="acme", arm="small", cost_usd=0.003, latency_ms=30, reward=0.0)
        await routed(conn, tenant="acme", arm="large", cost_usd=0.02, latency_ms=90, reward=None)
        await routed(conn, tenant="other", arm="small", cost_usd=0.5, latency_ms=5, reward=0.5)
        since = datetime.now(UTC) - timedelta(minutes=5)
        everyone = await activity.traffic(conn, since=since, bucket_s=3600)
        acme = await activity.traffic(conn, since=since, bucket_s=3600, tenant="acme")
        later = await activity.traffic(conn, since=datetime.now(UTC), bucket_s=60)
        with pytest.raises(ValueError, match="at most 10000 buckets"):
            await activity.traffic(conn, since=since - timedelta(days=1), bucket_s=1)

    by_arm = {row.arm: row for row in acme}
    assert set(by_arm) == {"small", "large"}
    small, large = by_arm["small"], by_arm["large"]
    assert (small.stage, small.decisions, small.rewarded) == ("pre", 2, 2)
    assert small.reward == pytest.approx(0.5)
    assert small.cost_usd == pytest.approx(0.004)
    assert small.latency_ms == pytest.approx(20.0)
    assert (large.decisions, large.rewarded, large.reward) == (1, 0, None)
    assert small.bucket.timestamp() % 3600 == 0
    assert sum(row.decisions for row in everyone) == 4
    assert later == []


async def test_latest_requests_newest_first_with_preview_and_reward(database: Database) -> None:
    async with database.connection() as conn:
        first = await routed(
            conn, tenant="acme", arm="small", cost_usd=0.001, latency_ms=10, reward=0.25
        )
        second = await routed(
            conn,
            tenant="acme",
            arm="large",
            cost_usd=0.002,
            latency_ms=20,
            reward=None,
            text="x" * 500,
        )
        await routed(conn, tenant="other", arm="small", cost_usd=0.1, latency_ms=1, reward=1.0)
        latest = await activity.latest_requests(conn, limit=10, tenant="acme", preview_chars=50)
        one = await activity.latest_requests(conn, limit=1)

    assert [r.id for r in latest] == [second, first]
    newest, oldest = latest
    assert newest.preview == "x" * 50
    assert (newest.model, newest.status, newest.decisions, newest.reward) == (
        "large",
        "completed",
        1,
        None,
    )
    assert oldest.reward == pytest.approx(0.25)
    assert oldest.preview == "What is 2 + 2?"
    assert [r.tenant for r in one] == ["other"]


async def test_spend_per_tenant_and_session_biggest_first(database: Database) -> None:
    async with database.connection() as conn:
        for cost, session in ((0.25, "s1"), (0.5, "s1"), (0.125, "s2"), (0.0625, None)):
            await routed(
                conn,
                tenant="acme",
                arm="small",
                cost_usd=cost,
                latency_ms=1,
                reward=None,
                session=session,
            )
        await routed(conn, tenant="other", arm="small", cost_usd=2.0, latency_ms=1, reward=None)
        tenants = await activity.spend(conn, sessions=False, limit=10)
        sessions = await activity.spend(conn, sessions=True, limit=10, tenant="acme")
        top = await activity.spend(conn, sessions=False, limit=1, tenant="acme")

    assert [(s.tenant, s.cost_usd, s.requests) for s in tenants] == [
        ("other", 2.0, 1),
        ("acme", 0.9375, 4),
    ]
    assert [(s.session_id, s.cost_usd, s.requests) for s in sessions] == [
        ("s1", 0.75, 2),
        ("s2", 0.125, 1),
    ]
    assert [s.cost_usd for s in top] == [0.9375]


async def test_recent_outcomes_newest_first_with_mean_reward(database: Database) -> None:
    async with database.connection() as conn:
        await routed(conn, tenant="acme", arm="small", cost_usd=0, latency_ms=1, reward=0.2)
        await routed(conn, tenant="other", arm="large", cost_usd=0, latency_ms=1, reward=None)
        await routed(conn, tenant="acme", arm="large", cost_usd=0, latency_ms=1, reward=0.6)
        last_two = await rewards.recent_outcomes(conn, stage="pre", window=2)
        acme = await rewards.recent_outcomes(conn, stage="pre", window=10, tenant="acme")
        post = await rewards.recent_outcomes(conn, stage="post", window=10)
        with pytest.raises(ValueError, match="window must be >= 1"):
            await rewards.recent_outcomes(conn, stage="pre", window=0)

    assert [(o.chosen_arm, o.reward) for o in last_two] == [("large", 0.6), ("large", None)]
    assert [o.chosen_arm for o in acme] == ["large", "small"]
    assert acme[1].reward == pytest.approx(0.2)
    assert acme[0].context["arms"][0]["arm"] == "large"
    assert post == []


async def test_a_reward_that_does_not_count_leaves_the_traffic_alone(
    database: Database,
) -> None:
    async with database.connection() as conn:
        request_id = await routed(
            conn, tenant="acme", arm="small", cost_usd=0.001, latency_ms=10, reward=1.0
        )
        [decision] = await decisions.list_decisions_for_request(conn, request_id)
        duplicate, _ = await rewards.record_reward(
            conn, decision_id=decision.id, value=0.0, source="immediate"
        )
        rows = await activity.traffic(
            conn, since=datetime.now(UTC) - timedelta(minutes=5), bucket_s=3600
        )
    assert not duplicate.counted
    assert [(r.arm, r.rewarded, r.reward) for r in rows] == [("small", 1, 1.0)]
