"""The in-process history index answers as an exact store query does, and follows the store:
rewards recorded later, another replica's requests, the most recent rows when full."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from psycopg import AsyncConnection

from router.history_index import HistoryIndex
from router.lifecycle.journal import Completed, DecisionRow, Journal, RewardRow
from router.lifecycle.journal import write as write_journal
from store import embeddings, rewards
from store.batches import Batch, write_batch
from store.database import Database
from store.records import EMBEDDING_DIM, NeighbourOutcome
from tests.store.factories import a_request

ARMS = ["small", "large", "code"]


def vector(rng: np.random.Generator) -> np.ndarray[Any, np.dtype[np.float32]]:
    return rng.normal(size=EMBEDDING_DIM).astype(np.float32)


def request_batch(
    rng: np.random.Generator, n: int, *, tenants: tuple[str, ...] = ("acme", "globex")
) -> tuple[Batch, list[uuid.UUID]]:
    """``n`` requests with their embeddings, 0-2 'pre' decisions each (some rewarded) and a
    'post' one, as the journal writer sends them."""
    batch = Batch()
    ids: list[uuid.UUID] = []
    for i in range(n):
        rid = uuid.uuid4()
        ids.append(rid)
        tenant = tenants[i % len(tenants)]
        user = None if i % 4 == 0 else f"u{i % 3}"
        batch.request(
            request_id=rid,
            tenant=tenant,
            user_id=user,
            session_id=None,
            messages=[{"role": "user", "content": "hi"}],
            params={},
            api_key_id=None,
        )
        for stage in ["pre"] * int(rng.integers(0, 3)) + ["post"]:
            did = uuid.uuid4()
            arm = str(rng.choice(ARMS))
            batch.decision(
                decision_id=did,
                request_id=rid,
                stage=stage,
                context={},
                arms=ARMS,
                chosen_arm=arm,
                probability=1.0,
                pmf={arm: 1.0},
                policy_name="vw-cb",
                policy_version=1,
            )
            if rng.random() < 0.7:
                batch.reward(
                    decision_id=did,
                    value=float(rng.random()),
                    source="run",
                    idempotency_key=f"run:{did}",
                    policy_update=None,
                )
        batch.embedding(request_id=rid, tenant=tenant, user_id=user, embedding=vector(rng))
    return batch, ids


async def populate(database: Database, batch: Batch) -> None:
    async with database.connection() as conn:
        await write_batch(conn, batch)


async def exact(
    conn: AsyncConnection[Any], probe: np.ndarray[Any, Any], **scope: Any
) -> list[NeighbourOutcome]:
    """The store's look-up with its HNSW index off: an exact scan, the reference."""
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        return await embeddings.neighbour_outcomes(conn, probe, k=20, **scope)


def same(index_rows: list[Any], store_rows: list[NeighbourOutcome]) -> None:
    assert [(r.request_id, r.arm, r.reward, r.created_at) for r in index_rows] == [
        (r.request_id, r.arm, r.reward, r.created_at) for r in store_rows
    ]
    assert [r.distance for r in index_rows] == pytest.approx(
        [r.distance for r in store_rows], abs=1e-5
    )


async def test_the_index_returns_the_exact_store_querys_neighbours_and_outcomes(
    database: Database,
) -> None:
    rng = np.random.default_rng(3)
    batch, _ = request_batch(rng, 400)
    await populate(database, batch)
    index = HistoryIndex(database, 1000)
    await index.load()
    assert index.size == 400
    scopes: list[dict[str, Any]] = [
        {"tenant": "acme"},
        {"tenant": "globex", "user_id": "u1"},
        {"tenant": "acme", "user_id": "u2"},
    ]
    async with database.connection(transaction=False) as conn:
        for n in range(30):
            probe = vector(rng)
            scope = scopes[n % len(scopes)]
            reference = await exact(conn, probe, **scope)
            assert reference, "the reference finds neighbours"
            same(index.neighbour_outcomes(probe, k=20, **scope), reference)
    assert index.lookups == 30


async def test_a_reward_recorded_after_indexing_shows_after_one_refresh(
    database: Database,
) -> None:
    rng = np.random.default_rng(4)
    async with database.connection() as conn:
        request_id = uuid.uuid4()
        batch, _ = request_batch(rng, 0)
        batch.request(
            request_id=request_id,
            tenant="acme",
            user_id=None,
            session_id=None,
            messages=[{"role": "user", "content": "hi"}],
            params={},
            api_key_id=None,
        )
        decision_id = uuid.uuid4()
        batch.decision(
            decision_id=decision_id,
            request_id=request_id,
            stage="pre",
            context={},
            arms=ARMS,
            chosen_arm="large",
            probability=1.0,
            pmf={"large": 1.0},
            policy_name="vw-cb",
            policy_version=1,
        )
        probe = vector(rng)
        batch.embedding(request_id=request_id, tenant="acme", user_id=None, embedding=probe)
        await write_batch(conn, batch)
    index = HistoryIndex(database, 100)
    await index.load()
    assert [(r.arm, r.reward) for r in index.neighbour_outcomes(probe, k=5, tenant="acme")] == [
        ("large", None)
    ]
    async with database.connection() as conn:
        await rewards.record_reward(conn, decision_id=decision_id, value=0.25, source="user")
    assert await index.refresh() == 1
    assert [(r.arm, r.reward) for r in index.neighbour_outcomes(probe, k=5, tenant="acme")] == [
        ("large", 0.25)
    ]
    assert await index.refresh() == 0  # nothing changed since


async def test_another_replicas_requests_show_after_one_refresh(
    database: Database, database_url: str
) -> None:
    rng = np.random.default_rng(5)
    index = HistoryIndex(database, 100)
    await index.load()
    assert index.size == 0
    replica = await Database.connect(database_url, max_size=1, run_migrations=False)
    try:
        batch, ids = request_batch(rng, 30)
        await populate(replica, batch)
    finally:
        await replica.close()
    assert await index.refresh() == 30
    assert all(rid in index for rid in ids)
    async with database.connection(transaction=False) as conn:
        probe = vector(rng)
        same(
            index.neighbour_outcomes(probe, k=20, tenant="globex"),
            await exact(conn, probe, tenant="globex"),
        )


async def newest(database: Database, n: int) -> list[uuid.UUID]:
    async with database.connection(transaction=False) as conn:
        cursor = await conn.execute(
            "SELECT request_id FROM query_embeddings ORDER BY created_at DESC LIMIT %s", (n,)
        )
        return [row[0] for row in await cursor.fetchall()]


async def test_a_full_index_holds_the_most_recent_rows(database: Database) -> None:
    rng = np.random.default_rng(6)
    batch, ids = request_batch(rng, 120, tenants=("acme",))
    await populate(database, batch)
    index = HistoryIndex(database, 50)
    await index.load()
    assert index.size == 50
    assert {rid for rid in ids if rid in index} == set(await newest(database, 50))
    batch, later = request_batch(rng, 20, tenants=("acme",))
    await populate(database, batch)
    await index.refresh()
    assert index.size == 50
    held = {rid for rid in ids + later if rid in index}
    assert held == set(await newest(database, 50))
    assert set(later) <= held


async def test_a_journal_of_this_process_is_seen_at_once_then_as_the_store_holds_it(
    database: Database,
) -> None:
    rng = np.random.default_rng(7)
    index = HistoryIndex(database, 100)
    await index.load()
    rid, did = str(uuid.uuid4()), str(uuid.uuid4())
    journal = Journal(request_id=rid, tenant="acme", user_id="u1")
    journal.decision(
        DecisionRow(
            decision_id=did,
            stage="pre",
            context={},
            arms=tuple(ARMS),
            chosen_arm="code",
            probability=1.0,
            pmf={"code": 1.0},
            policy_name="vw-cb",
            policy_version=1,
        )
    )
    for value, source in [
        (1.0, "run"),
        (0.5, "judge"),
        (0.0, "run"),
    ]:  # the second run: not counted
        journal.reward(RewardRow(did, value, source, f"{source}:{did}:{value}"))
    probe = vector(rng)
    async with database.connection() as conn:  # the request row, as the writer logs it first
        await a_request(conn, request_id=rid, tenant="acme", user_id="u1")
    index.note(journal, probe)
    noted = index.neighbour_outcomes(probe, k=5, tenant="acme", user_id="u1")
    assert [(r.request_id, r.arm, r.reward) for r in noted] == [(uuid.UUID(rid), "code", 0.75)]
    await write_journal(
        database,
        journal,
        Completed(output="4", model="code", cost_usd=0.0, latency_ms=1.0),
        probe,
    )
    await index.refresh()
    assert index.size == 1
    async with database.connection(transaction=False) as conn:
        same(
            index.neighbour_outcomes(probe, k=5, tenant="acme"),
            await exact(conn, probe, tenant="acme"),
        )
