"""Query embeddings and nearest-neighbour look-ups, scoped to a tenant (and optionally a user).

Distances are cosine distances (``<=>``), served by the HNSW index. A filtered HNSW scan
would return fewer than ``k`` rows when the tenant's rows are rare among the index's nearest
candidates, so look-ups rely on pgvector's iterative scan (``strict_order``, pgvector >= 0.8).

The connection must have pgvector's types registered and the iterative scan on: every
connection of ``Database`` has both. A look-up is one statement: run it on
``Database.connection(transaction=False)`` and it costs one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from store.ids import Id, reference
from store.records import EMBEDDING_DIM, Embedding, Neighbour, NeighbourOutcome
from store.rewards import MEAN_COUNTED_REWARD
from store.translation import translated

DEFAULT_STAGE = "pre"
"""The decision stage whose outcomes ``neighbour_outcomes`` reports: the routing choice."""

NO_COLUMNS = sql.SQL("")
PRE_OUTCOMES = sql.SQL(", pre_arms, pre_rewards, pre_decided_at, pre_decision_ids")
"""The request's pre-generation outcomes each embedding row carries (migration 0013: kept by
triggers on decisions and rewards), so that the default look-up needs no join."""


async def claim_embedder(conn: AsyncConnection[Any], embedder: str) -> str:
    """Record ``embedder`` as the one whose vectors the store holds; return the one recorded.

    That is ``embedder`` when the store recorded none, the same one, or another one but holds
    no embedding yet (switching costs nothing then). Otherwise it is the other embedder, and
    the caller must not store or search vectors of ``embedder`` here.
    """
    with translated("cannot read which embedder wrote the stored query embeddings"):
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO embedding_space (embedder) VALUES (%s) "
                "ON CONFLICT (singleton) DO NOTHING",
                (embedder,),
            )
            await conn.execute(
                "UPDATE embedding_space SET embedder = %s, claimed_at = clock_timestamp() "
                "WHERE embedder <> %s AND NOT EXISTS (SELECT 1 FROM query_embeddings)",
                (embedder, embedder),
            )
            cursor = await conn.execute("SELECT embedder FROM embedding_space")
            row = await cursor.fetchone()
    assert row is not None, "embedding_space holds its row"
    return str(row[0])


async def insert_embedding(
    conn: AsyncConnection[Any],
    *,
    request_id: Id,
    tenant: str,
    user_id: str | None,
    embedding: Embedding,
) -> None:
    """Store the query embedding of a request (one per request).

    Raises ValueError for an embedding that is not ``EMBEDDING_DIM`` finite values, not all
    zero; NotFoundError when the request does not exist; ConflictError when it already has
    an embedding.
    """
    rid = reference(request_id, "request")
    with translated(f"cannot store the embedding of request {rid}"):
        await conn.execute(
            "INSERT INTO query_embeddings (request_id, tenant, user_id, embedding) "
            "VALUES (%s, %s, %s, %s)",
            (rid, tenant, user_id, as_embedding(embedding)),
        )


async def nearest(
    conn: AsyncConnection[Any],
    embedding: Embedding,
    *,
    k: int,
    tenant: str,
    user_id: str | None = None,
    exclude_request_id: Id | None = None,
) -> list[Neighbour]:
    """The ``k`` stored queries of ``tenant`` nearest to ``embedding``, nearest first.

    With ``user_id``, only that user's queries; with ``exclude_request_id``, never that
    request (the probe itself, once stored). Approximate (HNSW) on large tables.
    """
    query = sql.SQL(
        "SELECT request_id, distance, created_at FROM ({knn}) AS nn ORDER BY distance"
    ).format(knn=_knn(user_id, exclude_request_id))
    params = knn_params(embedding, k, tenant, user_id, exclude_request_id)
    with translated("cannot search neighbouring queries"):
        rows = await _fetch(conn, query, params)
    return [Neighbour(**row) for row in rows]


async def neighbour_outcomes(
    conn: AsyncConnection[Any],
    embedding: Embedding,
    *,
    k: int,
    tenant: str,
    user_id: str | None = None,
    exclude_request_id: Id | None = None,
    stage: str = DEFAULT_STAGE,
) -> list[NeighbourOutcome]:
    """For the ``k`` nearest queries (as ``nearest``), the arm chosen at ``stage`` and its
    mean reward, nearest first.

    One row per decision; a neighbour without a decision at ``stage`` yields no row, one
    whose decision has no reward yet yields ``reward=None``. At the default stage the
    outcomes come from the embedding rows themselves (one index scan, no join); at any
    other stage from the decisions and rewards tables.
    """
    query = _outcomes_text(
        stage == DEFAULT_STAGE, user_id is not None, exclude_request_id is not None
    )
    params = knn_params(embedding, k, tenant, user_id, exclude_request_id)
    params["stage"] = stage
    with translated("cannot read the outcomes of neighbouring queries"):
        async with conn.cursor(binary=True) as cursor:
            await cursor.execute(query, params)
            rows = await cursor.fetchall()
    return [NeighbourOutcome(*row) for row in rows]


@lru_cache(maxsize=8)
def _outcomes_text(carried: bool, by_user: bool, excluding: bool) -> str:
    """The text of ``carried_outcomes`` or ``joined_outcomes`` for a scope, composed once:
    the look-up runs on every request, and the same text is what psycopg keys its prepared
    statement by. Its rows come back in binary (no timestamp or number parsed from text)."""
    compose = carried_outcomes if carried else joined_outcomes
    return compose("" if by_user else None, "" if excluding else None).as_string()


def carried_outcomes(user_id: str | None, exclude_request_id: Id | None) -> sql.Composed:
    """The pre-generation outcomes the nearest embedding rows carry: one kNN index scan.

    Parameters: ``knn_params``. The rows and their order are those of ``joined_outcomes``
    at stage 'pre' (the triggers of migration 0013 keep the carried arrays equal to the
    decisions and rewards tables).
    """
    return sql.SQL(
        "SELECT nn.request_id, nn.distance, o.arm, o.reward, o.created_at "
        "FROM ({knn}) AS nn CROSS JOIN LATERAL unnest("
        "nn.pre_arms, nn.pre_rewards, nn.pre_decided_at, nn.pre_decision_ids"
        ") AS o(arm, reward, created_at, id) "
        "ORDER BY nn.distance, o.created_at, o.id"
    ).format(knn=_knn(user_id, exclude_request_id, PRE_OUTCOMES))


def joined_outcomes(user_id: str | None, exclude_request_id: Id | None) -> sql.Composed:
    """The outcomes at any stage, read from the decisions and rewards of the neighbours.
    Parameters: ``knn_params`` and ``stage``.

    Each neighbour's decisions come from the request-id index (the LATERAL subquery, kept
    from being flattened by OFFSET 0): the planner would otherwise hash-join a small
    decisions table in full, which costs more than the k look-ups.
    """
    return sql.SQL(
        "WITH nn AS MATERIALIZED ({knn}) "
        "SELECT nn.request_id, nn.distance, d.arm, d.reward, d.created_at "
        "FROM nn CROSS JOIN LATERAL ("
        "SELECT d.id, d.chosen_arm AS arm, d.created_at, {mean} AS reward "
        "FROM decisions AS d WHERE d.request_id = nn.request_id AND d.stage = %(stage)s "
        "OFFSET 0) AS d "
        "ORDER BY nn.distance, d.created_at, d.id"
    ).format(knn=_knn(user_id, exclude_request_id), mean=MEAN_COUNTED_REWARD)


def as_embedding(embedding: Embedding) -> Embedding:
    """``embedding`` as a float32 vector of ``EMBEDDING_DIM`` values.

    Raises ValueError when it has another shape, a non-finite value, or only zeros (whose
    cosine distance to anything is undefined).
    """
    vector = np.asarray(embedding, dtype=np.float32)
    if vector.shape != (EMBEDDING_DIM,):
        raise ValueError(f"an embedding has shape ({EMBEDDING_DIM},), got {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise ValueError("an embedding must hold finite values only")
    if not np.any(vector):
        raise ValueError("an all-zero embedding has no cosine distance to anything")
    return vector


def _knn(
    user_id: str | None, exclude_request_id: Id | None, extra: sql.Composable = NO_COLUMNS
) -> sql.Composable:
    """The k-nearest query of the scope; its ``ORDER BY ... LIMIT`` is what HNSW serves.
    ``extra``: more columns of ``query_embeddings`` to select (each after a comma)."""
    conditions = [sql.SQL("tenant = %(tenant)s")]
    if user_id is not None:
        conditions.append(sql.SQL("user_id = %(user_id)s"))
    if exclude_request_id is not None:
        conditions.append(sql.SQL("request_id <> %(exclude)s"))
    return sql.SQL(
        "SELECT request_id, created_at, embedding <=> %(probe)s AS distance{extra} "
        "FROM query_embeddings WHERE {conditions} ORDER BY embedding <=> %(probe)s LIMIT %(k)s"
    ).format(conditions=sql.SQL(" AND ").join(conditions), extra=extra)


def knn_params(
    embedding: Embedding,
    k: int,
    tenant: str,
    user_id: str | None,
    exclude_request_id: Id | None,
) -> dict[str, Any]:
    """The parameters of the kNN query of the scope. Raises ValueError for k < 0 or a bad
    embedding (``as_embedding``)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return {
        "probe": as_embedding(embedding),
        "k": k,
        "tenant": tenant,
        "user_id": user_id,
        "exclude": None if exclude_request_id is None else reference(exclude_request_id, "request"),
    }


async def _fetch(
    conn: AsyncConnection[Any], query: sql.Composed, params: dict[str, Any]
) -> Sequence[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()
