"""The pre-generation outcomes each embedding row carries (migration 0013) are exactly what
the decisions and rewards tables say, whatever order the rows arrive in and whatever
changes later: the look-up without a join returns the rows the joined one returned."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from store import embeddings, rewards
from store.batches import Batch, write_batch
from store.database import Database
from store.records import EMBEDDING_DIM, NeighbourOutcome
from tests.store.factories import a_decision, a_request

JOINED = sql.SQL(
    "WITH nn AS MATERIALIZED ("
    "SELECT request_id, embedding <=> %(probe)s AS distance FROM query_embeddings "
    "WHERE tenant = %(tenant)s AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s) "
    "AND (%(exclude)s::uuid IS NULL OR request_id <> %(exclude)s) "
    "ORDER BY embedding <=> %(probe)s LIMIT %(k)s) "
    "SELECT nn.request_id, nn.distance, d.chosen_arm AS arm, d.created_at, "
    "(SELECT avg(w.value) FROM rewards AS w WHERE w.decision_id = d.id AND w.counted) "
    "AS reward FROM nn JOIN decisions AS d ON d.request_id = nn.request_id AND d.stage = 'pre' "
    "ORDER BY nn.distance, d.created_at, d.id"
)
"""The reference: the outcomes read from the decisions and rewards tables by a join."""


async def joined(
    conn: AsyncConnection[Any],
    probe: np.ndarray[Any, Any],
    *,
    k: int,
    tenant: str,
    user_id: str | None = None,
    exclude: uuid.UUID | None = None,
) -> list[NeighbourOutcome]:
    params = {
        "probe": embeddings.as_embedding(probe),
        "tenant": tenant,
        "user_id": user_id,
        "exclude": exclude,
        "k": k,
    }
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(JOINED, params)
        return [NeighbourOutcome(**row) for row in await cursor.fetchall()]


def vector(rng: np.random.Generator) -> np.ndarray[Any, Any]:
    values = rng.normal(size=EMBEDDING_DIM).astype(np.float32)
    return values / np.linalg.norm(values)


async def test_the_carried_outcomes_match_the_joined_ones_whatever_the_order(
    database: Database,
) -> None:
    rng = np.random.default_rng(7)
    arms = ["small", "large", "code"]
    request_ids: list[uuid.UUID] = []
    decision_ids: list[uuid.UUID] = []
    async with database.connection() as conn:
        for i in range(60):
            user = f"u{i % 3}"
            request = await a_request(conn, tenant="acme", user_id=user)
            request_ids.append(request.id)
            embedding_first = i % 3 == 0
            if embedding_first:  # the embedding before its decisions and rewards
                await embeddings.insert_embedding(
                    conn, request_id=request.id, tenant="acme", user_id=user, embedding=vector(rng)
                )
            for _ in range(int(rng.integers(0, 4))):  # 0 to 3 'pre' decisions (failed runs)
                arm = str(rng.choice(arms))
                decision = await a_decision(
                    conn, request.id, arms=arms, chosen_arm=arm, pmf={arm: 1.0}, probability=1.0
                )
                decision_ids.append(decision.id)
                for source in ["judge", "user", "run"][: int(rng.integers(0, 4))]:
                    await rewards.record_reward(
                        conn, decision_id=decision.id, value=float(rng.random()), source=source
                    )
            await a_decision(conn, request.id, stage="post", chosen_arm="large")
            if not embedding_first:
                await embeddings.insert_embedding(
                    conn, request_id=request.id, tenant="acme", user_id=user, embedding=vector(rng)
                )
        # rewards arriving later, one changed, one deleted, a decision deleted
        for decision_id in decision_ids[::5]:
            await rewards.record_reward(conn, decision_id=decision_id, value=0.25, source="late")
        await conn.execute(
            "UPDATE rewards SET value = 0.125 WHERE source = 'late' AND id = "
            "(SELECT min(id) FROM rewards WHERE source = 'late')"
        )
        await conn.execute("DELETE FROM rewards WHERE id = (SELECT max(id) FROM rewards)")
        await conn.execute("DELETE FROM decisions WHERE id = %s", (decision_ids[3],))
    # a group commit: decisions, rewards, then the embedding, in one transaction
    batch = Batch()
    for _ in range(5):
        rid, did = uuid.uuid4(), uuid.uuid4()
        batch.request(
            request_id=rid,
            tenant="acme",
            user_id="u0",
            session_id=None,
            messages=[{"role": "user", "content": "hi"}],
            params={},
            api_key_id=None,
        )
        batch.decision(
            decision_id=did,
            request_id=rid,
            stage="pre",
            context={},
            arms=arms,
            chosen_arm="code",
            probability=1.0,
            pmf={"code": 1.0},
            policy_name="p",
            policy_version=1,
        )
        batch.reward(
            decision_id=did, value=0.5, source="run", idempotency_key=f"k{did}", policy_update=None
        )
        batch.embedding(request_id=rid, tenant="acme", user_id="u0", embedding=vector(rng))
    async with database.connection() as conn:
        await write_batch(conn, batch)

    checked = 0
    async with database.connection(transaction=False) as conn:
        for probe_index in range(12):
            probe = vector(rng)
            scopes: list[dict[str, Any]] = [
                {"k": 20},
                {"k": 70},
                {"k": 10, "user_id": "u1"},
                {"k": 10, "exclude": request_ids[probe_index]},
            ]
            for scope in scopes:
                carried = await embeddings.neighbour_outcomes(
                    conn,
                    probe,
                    tenant="acme",
                    k=scope["k"],
                    user_id=scope.get("user_id"),
                    exclude_request_id=scope.get("exclude"),
                )
                reference = await joined(conn, probe, tenant="acme", **scope)
                assert carried == reference
                checked += len(reference)
    assert checked > 500  # the comparison saw many outcomes, some without rewards
    async with database.connection(transaction=False) as conn:
        everything = await embeddings.neighbour_outcomes(conn, vector(rng), k=70, tenant="acme")
    assert any(o.reward is None for o in everything)
    assert len({o.request_id for o in everything}) < len(everything)  # several per request


async def test_other_stages_are_still_read_from_the_decisions(database: Database) -> None:
    rng = np.random.default_rng(3)
    async with database.connection() as conn:
        request = await a_request(conn, tenant="acme")
        await embeddings.insert_embedding(
            conn, request_id=request.id, tenant="acme", user_id=None, embedding=vector(rng)
        )
        decision = await a_decision(conn, request.id, stage="post", chosen_arm="large")
        await rewards.record_reward(conn, decision_id=decision.id, value=0.5, source="judge")
        post = await embeddings.neighbour_outcomes(
            conn, vector(rng), k=5, tenant="acme", stage="post"
        )
        pre = await embeddings.neighbour_outcomes(conn, vector(rng), k=5, tenant="acme")
    assert [(o.request_id, o.arm, o.reward) for o in post] == [(request.id, "large", 0.5)]
    assert pre == []


async def test_a_reward_that_does_not_count_leaves_the_history_alone(database: Database) -> None:
    """A second reward of one source on a decision is recorded but not counted: it moves
    neither the neighbour's mean reward nor, so, the routing history (a tenant flooding
    duplicates cannot steer its history either)."""
    rng = np.random.default_rng(5)
    probe = vector(rng)
    async with database.connection() as conn:
        request = await a_request(conn, tenant="acme")
        await embeddings.insert_embedding(
            conn, request_id=request.id, tenant="acme", user_id=None, embedding=probe
        )
        decision = await a_decision(conn, request.id, stage="pre", chosen_arm="small")
        await rewards.record_reward(conn, decision_id=decision.id, value=1.0, source="user")
        for _ in range(5):
            duplicate, created = await rewards.record_reward(
                conn, decision_id=decision.id, value=0.0, source="user"
            )
            assert created
            assert not duplicate.counted
        await rewards.record_reward(conn, decision_id=decision.id, value=0.5, source="judge")
        carried = await embeddings.neighbour_outcomes(conn, probe, k=5, tenant="acme")
        reference = await joined(conn, probe, k=5, tenant="acme")
    assert [(o.arm, o.reward) for o in carried] == [("small", 0.75)]
    assert carried == reference
