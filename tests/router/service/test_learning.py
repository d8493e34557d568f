"""The routing loop learns through the running service and keeps what it learned."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from learner.context import Context
from learner.reward import RewardWeights
from router.policies import PRE_GENERATION
from router.providers import Delta
from router.routing import RouteRequest
from router.tools.replay_pool.dataset import ReplayDataset
from store import embeddings as embedding_store
from store import requests as request_log
from store.database import Database
from tests.router.service.conftest import ServiceFactory


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_feedback_moves_the_pmf(service: ServiceFactory) -> None:
    async with service() as client:
        routed = (await client.post("/route-and-run", json={"messages": user("2 + 2 = ?")})).json()
        decision = (await client.get(f"/requests/{routed['id']}")).json()["decisions"][0]
        context = Context.from_json(decision["context"])
        policy = client.runtime.policies.get(PRE_GENERATION)
        before = policy.pmf(context)
        response = await client.post(
            "/feedback", json={"decision_id": decision["decision_id"], "reward": 1.0}
        )
        assert response.json()["policy_updates"] == policy.updates
        after = policy.pmf(context)
    assert not np.allclose(before, after)
    assert sum(after) == pytest.approx(1.0)


async def test_500_train_prompts_are_logged_learned_and_survive_a_restart(
    service: ServiceFactory, replay_dataset: ReplayDataset, database: Database
) -> None:
    rng = np.random.default_rng(0)
    train = [r for r in replay_dataset if r.split == "train"]
    prompts = [train[i] for i in rng.choice(len(train), size=500, replace=False)]
    async with service(snapshot_every=1000) as client:
        for record in prompts:
            response = await client.post("/route-and-run", json={"messages": user(record.prompt)})
            assert response.status_code == 200, response.text
            body = response.json()
            correct = record.outcome(body["model"]).correct
            feedback = await client.post(
                "/feedback",
                json={"request_id": body["id"], "reward": correct, "source": "label"},
            )
            assert feedback.status_code == 201, feedback.text
        policy = client.runtime.policies.get(PRE_GENERATION)
        last = (await client.get(f"/requests/{body['id']}")).json()["decisions"][0]
        context = Context.from_json(last["context"])
        pmf_before_restart = policy.pmf(context)
        updates_before_restart = policy.updates

    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT d.stage, count(*), min(d.probability), max(d.probability), "
            "count(*) FILTER (WHERE NOT EXISTS "
            "  (SELECT 1 FROM rewards r WHERE r.decision_id = d.id)), "
            "(SELECT count(*) FROM rewards r JOIN decisions e ON e.id = r.decision_id "
            " WHERE e.stage = d.stage) "
            "FROM decisions d GROUP BY d.stage"
        )
        rows = {row[0]: row[1:] for row in await cursor.fetchall()}
        cursor = await conn.execute("SELECT status, count(*) FROM requests GROUP BY status")
        statuses = dict(await cursor.fetchall())
    assert statuses == {"completed": 500}
    pre_decisions, low, high, unrewarded, pre_rewards = rows["pre"]
    assert pre_decisions == 500
    for _, low, high, unrewarded, _ in rows.values():
        assert 0 < low <= high <= 1
        assert unrewarded == 0
    # Every pre decision has its immediate reward; the label feedback credited the ones that
    # produced the answer; the policy learned from each reward exactly once.
    assert pre_rewards == updates_before_restart
    assert 500 < pre_rewards <= 1000

    async with service(snapshot_every=1000) as client:
        restored = client.runtime.policies.get(PRE_GENERATION)
        assert restored.updates == updates_before_restart
        assert np.allclose(restored.pmf(context), pmf_before_restart)


async def test_a_stream_abandoned_midway_is_logged_as_failed(
    service: ServiceFactory, replay_dataset: ReplayDataset, database: Database
) -> None:
    record = next(r for r in replay_dataset if r.task == "mbpp")
    async with service(replay={"stream_chunks_per_s": 20.0}) as client:
        request = RouteRequest(
            messages=({"role": "user", "content": record.prompt},),
            weights=RewardWeights(),
            stream=True,
        )
        events = client.runtime.router.run(request)
        first = await anext(events)
        assert isinstance(first, Delta)
        await events.aclose()
    async with database.connection() as conn:
        cursor = await conn.execute("SELECT status, error FROM requests")
        rows = await cursor.fetchall()
    assert len(rows) == 1
    status, error = rows[0]
    assert status == "failed"
    assert error.startswith("abandoned")


async def test_a_failed_look_up_without_a_background_writer_still_logs_the_request(
    service: ServiceFactory, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request row goes to the store beside the kNN look-up (no background writer and no
    history index, as in the benchmark); when the look-up fails, the row is in before the
    journal marks it failed."""

    async def broken(*_: Any, **__: Any) -> list[Any]:
        raise RuntimeError("the neighbour look-up broke")

    insert_request = request_log.insert_request

    async def slow_insert(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)  # the look-up fails while the row is on its way
        return await insert_request(*args, **kwargs)

    monkeypatch.setattr(embedding_store, "neighbour_outcomes", broken)
    monkeypatch.setattr(request_log, "insert_request", slow_insert)
    async with service(history_index=False) as client:
        router = client.runtime.router
        monkeypatch.setattr(router, "_writer", None)
        request = RouteRequest(messages=tuple(user("2 + 2 = ?")), weights=RewardWeights())
        with pytest.raises(RuntimeError, match="look-up broke"):
            async for _ in router.run(request):
                pass
    async with database.connection() as conn:
        cursor = await conn.execute("SELECT status, error FROM requests")
        rows = await cursor.fetchall()
    assert len(rows) == 1
    status, error = rows[0]
    assert (status, error.startswith("abandoned")) == ("failed", True)
