"""Reading the recent query embeddings and those changed since a marker (migration 0010):
new rows, rows whose carried outcomes a reward refreshed, and rows committed late by a
transaction that began before the marker, all found."""

from __future__ import annotations

import uuid

from store import embedding_changes, embeddings, rewards
from store.database import Database
from tests.store.factories import a_decision, a_request, unit


async def a_stored_query(database: Database, tenant: str = "acme") -> uuid.UUID:
    async with database.connection() as conn:
        request = await a_request(conn, tenant=tenant)
        await embeddings.insert_embedding(
            conn, request_id=request.id, tenant=tenant, user_id="u1", embedding=unit(1, 2)
        )
    return request.id


async def test_the_recent_rows_come_newest_first_with_their_outcomes(database: Database) -> None:
    ids = [await a_stored_query(database) for _ in range(4)]
    async with database.connection() as conn:
        decision = await a_decision(conn, ids[3], chosen_arm="large", arms=["small", "large"])
        await rewards.record_reward(conn, decision_id=decision.id, value=0.5, source="judge")
        rows = await embedding_changes.recent_embeddings(conn, 3)
    assert [row.request_id for row in rows] == ids[:0:-1]
    newest = rows[0]
    assert (newest.tenant, newest.user_id) == ("acme", "u1")
    assert newest.embedding.shape == (384,)
    assert (newest.decision_ids, newest.arms, newest.rewards) == (
        (decision.id,),
        ("large",),
        (0.5,),
    )
    assert newest.decided_at == (decision.created_at,)
    assert rows[1].arms == ()
    assert rows[1].decision_ids == ()


async def test_new_rows_and_refreshed_outcomes_are_read_once_after_the_marker(
    database: Database,
) -> None:
    old = await a_stored_query(database)
    async with database.connection(transaction=False) as conn:
        marker = await embedding_changes.change_marker(conn)
    new = await a_stored_query(database)
    async with database.connection(transaction=False) as conn:
        marker, rows = await embedding_changes.changes_since(conn, marker)
        assert [row.request_id for row in rows] == [new]
        decision = await a_decision(conn, old, chosen_arm="small")
        await rewards.record_reward(conn, decision_id=decision.id, value=1.0, source="user")
        marker, rows = await embedding_changes.changes_since(conn, marker)
        assert [(row.request_id, row.arms, row.rewards) for row in rows] == [
            (old, ("small",), (1.0,))
        ]
        _, rows = await embedding_changes.changes_since(conn, marker)
    assert rows == []


async def test_a_row_committed_late_by_an_older_transaction_is_not_missed(
    database: Database, database_url: str
) -> None:
    async with database.connection() as conn:
        request = await a_request(conn, tenant="acme")
    slow = await Database.connect(database_url, max_size=1, run_migrations=False)
    try:
        async with slow.connection() as slow_conn:  # begins, writes, commits last
            await embeddings.insert_embedding(
                slow_conn, request_id=request.id, tenant="acme", user_id=None, embedding=unit(1)
            )
            async with database.connection(transaction=False) as conn:
                marker = await embedding_changes.change_marker(conn)
            fast = await a_stored_query(database)  # a later transaction, committed first
            async with database.connection(transaction=False) as conn:
                marker, rows = await embedding_changes.changes_since(conn, marker)
            assert [row.request_id for row in rows] == [fast]
    finally:
        await slow.close()
    async with database.connection(transaction=False) as conn:
        _, rows = await embedding_changes.changes_since(conn, marker)
    assert request.id in {row.request_id for row in rows}
