"""kNN by cosine distance, scoped to a tenant and optionally a user, joined to outcomes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from psycopg import AsyncConnection

from features.errors import ConflictError, NotFoundError
from store import embeddings, rewards
from store.database import Database
from store.records import EMBEDDING_DIM, Embedding, RequestRecord
from tests.store.factories import a_decision, a_request, unit


async def stored(
    conn: AsyncConnection[Any],
    embedding: Embedding,
    tenant: str = "acme",
    user_id: str | None = None,
) -> RequestRecord:
    request = await a_request(conn, tenant=tenant, user_id=user_id)
    await embeddings.insert_embedding(
        conn, request_id=request.id, tenant=tenant, user_id=user_id, embedding=embedding
    )
    return request


async def test_nearest_orders_by_cosine_distance(database: Database) -> None:
    async with database.connection() as conn:
        same = await stored(conn, unit(1, 0))
        scaled = await stored(conn, unit(2, 0.2))  # cosine ignores length: close to same
        diagonal = await stored(conn, unit(1, 1))
        orthogonal = await stored(conn, unit(0, 1))
        opposite = await stored(conn, unit(-1, 0))

        found = await embeddings.nearest(conn, unit(1, 0), k=4, tenant="acme")

    assert [n.request_id for n in found] == [same.id, scaled.id, diagonal.id, orthogonal.id]
    assert opposite.id not in {n.request_id for n in found}
    assert found[0].distance == pytest.approx(0.0, abs=1e-6)
    assert found[2].distance == pytest.approx(1 - math.cos(math.pi / 4), abs=1e-6)
    assert found[3].distance == pytest.approx(1.0, abs=1e-6)


async def test_nearest_stays_within_the_tenant_and_user(database: Database) -> None:
    async with database.connection() as conn:
        mine = await stored(conn, unit(1, 0.5), user_id="alice")
        colleague = await stored(conn, unit(1, 0.1), user_id="bob")
        await stored(conn, unit(1, 0), tenant="globex", user_id="alice")

        tenant_wide = await embeddings.nearest(conn, unit(1, 0), k=10, tenant="acme")
        alice_only = await embeddings.nearest(
            conn, unit(1, 0), k=10, tenant="acme", user_id="alice"
        )
        nobody = await embeddings.nearest(conn, unit(1, 0), k=10, tenant="initech")

    assert [n.request_id for n in tenant_wide] == [colleague.id, mine.id]
    assert [n.request_id for n in alice_only] == [mine.id]
    assert nobody == []


async def test_nearest_can_exclude_the_probe_itself(database: Database) -> None:
    async with database.connection() as conn:
        probe = await stored(conn, unit(1, 0))
        neighbour = await stored(conn, unit(1, 1))

        found = await embeddings.nearest(
            conn, unit(1, 0), k=5, tenant="acme", exclude_request_id=str(probe.id)
        )

    assert [n.request_id for n in found] == [neighbour.id]


async def test_nearest_among_many_returns_k_and_the_true_nearest(database: Database) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, EMBEDDING_DIM)).astype(np.float32)
    async with database.connection() as conn:
        ids = [(await stored(conn, vector)).id for vector in vectors]
        probe = vectors[42] + 0.01 * rng.normal(size=EMBEDDING_DIM).astype(np.float32)

        found = await embeddings.nearest(conn, probe, k=5, tenant="acme")

    normalised = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = np.argsort(1 - normalised @ (probe / np.linalg.norm(probe)))[:5]
    assert len(found) == 5
    assert found[0].request_id == ids[42]
    assert [n.request_id for n in found] == [ids[i] for i in exact]


async def test_neighbour_outcomes_report_the_pre_arm_and_its_mean_reward(
    database: Database,
) -> None:
    async with database.connection() as conn:
        rewarded = await stored(conn, unit(1, 0.1))
        pending = await stored(conn, unit(1, 0.5))
        undecided = await stored(conn, unit(1, 0.2))
        decision = await a_decision(conn, rewarded.id, chosen_arm="small")
        await rewards.record_reward(conn, decision_id=decision.id, value=1.0, source="judge")
        await rewards.record_reward(conn, decision_id=decision.id, value=0.5, source="user")
        await a_decision(conn, rewarded.id, stage="post", chosen_arm="large")
        await a_decision(conn, pending.id, chosen_arm="large", probability=0.2)

        outcomes = await embeddings.neighbour_outcomes(conn, unit(1, 0), k=3, tenant="acme")

    assert [(o.request_id, o.arm, o.reward) for o in outcomes] == [
        (rewarded.id, "small", 0.75),
        (pending.id, "large", None),
    ]
    assert undecided.id not in {o.request_id for o in outcomes}
    assert outcomes[0].distance < outcomes[1].distance


async def test_invalid_embeddings_are_refused(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        for bad, reason in [
            (np.ones(10, dtype=np.float32), "shape"),
            (np.full(EMBEDDING_DIM, np.nan, dtype=np.float32), "finite"),
            (np.zeros(EMBEDDING_DIM, dtype=np.float32), "all-zero"),
        ]:
            with pytest.raises(ValueError, match=reason):
                await embeddings.insert_embedding(
                    conn, request_id=request.id, tenant="acme", user_id=None, embedding=bad
                )


async def test_one_embedding_per_existing_request(database: Database) -> None:
    async with database.connection() as conn:
        request = await stored(conn, unit(1, 0))
        with pytest.raises(ConflictError, match="already exists"):
            async with conn.transaction():
                await embeddings.insert_embedding(
                    conn, request_id=request.id, tenant="acme", user_id=None, embedding=unit(0, 1)
                )
        with pytest.raises(NotFoundError, match='not present in table "requests"'):
            await embeddings.insert_embedding(
                conn,
                request_id="00000000-0000-0000-0000-000000000000",
                tenant="acme",
                user_id=None,
                embedding=unit(0, 1),
            )


async def test_a_tenant_rare_among_the_nearest_still_gets_k_neighbours(
    database: Database,
) -> None:
    """The HNSW scan serves the look-up, and the iterative scan every pooled connection has
    on keeps going past the other tenant's nearer rows until it found ``k`` of ours."""
    rng = np.random.default_rng(11)
    probe = rng.normal(size=EMBEDDING_DIM).astype(np.float32)
    crowd = probe + 0.05 * rng.normal(size=(400, EMBEDDING_DIM)).astype(np.float32)
    ours = rng.normal(size=(8, EMBEDDING_DIM)).astype(np.float32)
    async with database.connection() as conn:
        for vector in crowd:
            await stored(conn, vector, tenant="crowd")
        for vector in ours:
            await stored(conn, vector, tenant="rare")
    async with database.connection() as conn:
        for plan_kind in ("seqscan", "bitmapscan", "sort"):  # leave the planner the HNSW scan
            await conn.execute(f"SET LOCAL enable_{plan_kind} = off")
        plan = await conn.execute(
            "EXPLAIN SELECT request_id FROM query_embeddings WHERE tenant = 'rare' "
            "ORDER BY embedding <=> %s LIMIT 5",
            (probe,),
        )
        assert "query_embeddings_embedding" in str(await plan.fetchall())  # the HNSW index
        found = await embeddings.nearest(conn, probe, k=5, tenant="rare")
        assert len(found) == 5
        await conn.execute("SET LOCAL hnsw.iterative_scan = off")
        assert len(await embeddings.nearest(conn, probe, k=5, tenant="rare")) < 5


async def test_the_store_holds_one_embedders_vectors(database: Database) -> None:
    async with database.connection() as conn:
        assert await embeddings.claim_embedder(conn, "minilm") == "minilm"
        assert await embeddings.claim_embedder(conn, "minilm") == "minilm"
        # no vector stored yet: switching is free
        assert await embeddings.claim_embedder(conn, "hashing") == "hashing"
        await stored(conn, unit(1, 0))
        # now the store's vectors are hashing's: another embedder is told so, not recorded
        assert await embeddings.claim_embedder(conn, "minilm") == "hashing"
        assert await embeddings.claim_embedder(conn, "hashing") == "hashing"
        cursor = await conn.execute("SELECT count(*) FROM embedding_space")
        assert await cursor.fetchone() == (1,)
