"""Reading query embeddings for an in-process copy: the most recent ones, and those changed
since a marker.

The marker is a transaction id (migration 0010): each row's ``change_xact`` is the id of the
transaction that last inserted or updated it (a new embedding, or its carried outcomes
refreshed by a decision or reward). ``change_marker`` returns the xmin of a fresh snapshot:
every transaction that commits after it has an id at least that large. So a reader that
takes a marker, then reads what it needs, and later reads the rows with ``change_xact`` at
least that marker misses no change; it may read a row twice, which a copy keyed by request id
absorbs. Each function is one statement: run them on
``Database.connection(transaction=False)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from store.records import StoredEmbedding
from store.translation import translated

_MARKER = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_RECENT = (
    "SELECT request_id, tenant, user_id, embedding, created_at, "
    "pre_decision_ids, pre_arms, pre_rewards, pre_decided_at "
    "FROM query_embeddings ORDER BY created_at DESC LIMIT %s"
)
_CHANGED = (
    "SELECT q.request_id, q.tenant, q.user_id, q.embedding, q.created_at, "
    "q.pre_decision_ids, q.pre_arms, q.pre_rewards, q.pre_decided_at, m.marker "
    "FROM (" + _MARKER + " AS marker) AS m "
    "LEFT JOIN query_embeddings AS q ON q.change_xact >= %s"
)
"""The changed rows and the next marker in one statement (one snapshot): a row with the
marker and no request when nothing changed."""


async def change_marker(conn: AsyncConnection[Any]) -> int:
    """A marker such that every change committed from now on has ``change_xact`` >= it."""
    with translated("cannot read the store's transaction horizon"):
        cursor = await conn.execute(_MARKER)
        row = await cursor.fetchone()
    assert row is not None, "a snapshot has an xmin"
    return int(row[0])


async def recent_embeddings(conn: AsyncConnection[Any], limit: int) -> list[StoredEmbedding]:
    """The ``limit`` most recently stored embeddings of all tenants, newest first. Raises
    ValueError for a negative ``limit``."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    with translated("cannot read the recent query embeddings"):
        return await _rows(conn, _RECENT, (limit,))


async def changes_since(
    conn: AsyncConnection[Any], marker: int
) -> tuple[int, list[StoredEmbedding]]:
    """The next marker, and every embedding inserted or updated by a transaction that
    committed after ``marker`` was taken (and a few that committed just before: a caller
    applies them again harmlessly). Pass the returned marker to the next call."""
    with translated("cannot read the changed query embeddings"):
        async with conn.cursor(binary=True) as cursor:
            await cursor.execute(_CHANGED, (marker,))
            rows = await cursor.fetchall()
    assert rows, "the marker's row is always there"
    following = int(rows[0][-1])
    return following, _embeddings([row[:-1] for row in rows if row[0] is not None])


async def _rows(
    conn: AsyncConnection[Any], query: str, params: Sequence[Any]
) -> list[StoredEmbedding]:
    async with conn.cursor(binary=True) as cursor:
        await cursor.execute(query, params)
        rows = await cursor.fetchall()
    return _embeddings(rows)


def _embeddings(rows: Sequence[Sequence[Any]]) -> list[StoredEmbedding]:
    # pgvector's binary loader gives ``pgvector.Vector`` values: taken as numpy arrays here
    return [
        StoredEmbedding(
            request_id=rid,
            tenant=tenant,
            user_id=user_id,
            embedding=np.asarray(embedding.to_numpy(), dtype=np.float32),
            created_at=created_at,
            decision_ids=tuple(ids or ()),
            arms=tuple(arms or ()),
            rewards=tuple(rewards or ()),
            decided_at=tuple(decided or ()),
        )
        for rid, tenant, user_id, embedding, created_at, ids, arms, rewards, decided in rows
    ]
