"""The decision log: what the policy saw, could choose, chose, and with what probability.

This is the data off-policy evaluation and replay need, so a decision is written once and
never updated. Every function runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from features.errors import NotFoundError
from store.columns import columns
from store.ids import Id, new_id, reference
from store.records import DecisionRecord
from store.translation import translated

DEFAULT_LIST_LIMIT = 10_000
"""How many decisions ``list_decisions`` returns when no limit is given."""


async def insert_decision(
    conn: AsyncConnection[Any],
    *,
    request_id: Id,
    stage: str,
    context: Mapping[str, Any],
    arms: Sequence[str],
    chosen_arm: str,
    probability: float,
    pmf: Mapping[str, float],
    policy_name: str,
    policy_version: int,
    decision_id: Id | None = None,
    outcome: str | None = None,
    masked: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> DecisionRecord:
    """Log a decision for request ``request_id``; ``decision_id`` defaults to a new uuid.

    ``context`` (the feature values) must be JSON-serialisable and finite. Raises
    RequestError when ``probability`` is not in (0, 1], ``arms`` is empty or does not hold
    ``chosen_arm``; NotFoundError when the request does not exist.
    """
    query = sql.SQL(
        "INSERT INTO decisions (id, request_id, stage, context, arms, chosen_arm, probability, "
        "pmf, policy_name, policy_version, outcome, masked, details) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}"
    ).format(columns(DecisionRecord))
    values = (
        new_id(decision_id),
        reference(request_id, "request"),
        stage,
        Jsonb(dict(context)),
        list(arms),
        chosen_arm,
        probability,
        Jsonb({arm: float(p) for arm, p in pmf.items()}),
        policy_name,
        policy_version,
        outcome,
        None if masked is None else Jsonb(dict(masked)),
        None if details is None else Jsonb(dict(details)),
    )
    with translated("cannot log the decision"):
        rows = await _fetch(conn, query, values)
    return rows[0]


async def get_decision(conn: AsyncConnection[Any], decision_id: Id) -> DecisionRecord:
    """The decision with this id. Raises NotFoundError if there is none."""
    did = reference(decision_id, "decision")
    query = sql.SQL("SELECT {} FROM decisions WHERE id = %s").format(columns(DecisionRecord))
    with translated(f"cannot read decision {did}"):
        rows = await _fetch(conn, query, (did,))
    if not rows:
        raise NotFoundError(f"no decision {did}")
    return rows[0]


async def list_decisions_for_request(
    conn: AsyncConnection[Any], request_id: Id
) -> list[DecisionRecord]:
    """The decisions of one request, oldest first (empty for an unknown request)."""
    rid = reference(request_id, "request")
    query = sql.SQL(
        "SELECT {} FROM decisions WHERE request_id = %s ORDER BY created_at, id"
    ).format(columns(DecisionRecord))
    with translated(f"cannot read the decisions of request {rid}"):
        return await _fetch(conn, query, (rid,))


async def list_decisions(
    conn: AsyncConnection[Any],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    stage: str | None = None,
    tenant: str | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
    after: tuple[datetime, Id] | None = None,
) -> list[DecisionRecord]:
    """Decisions made in [``since``, ``until``), oldest first, at most ``limit`` of them.

    Each filter left as None does not filter. ``tenant`` is the tenant of the decision's
    request. ``after`` is the ``(created_at, id)`` of the last decision of the previous
    page: only decisions after it in this order are returned (keyset paging, so reading a
    large log never skips or repeats a row). For replay and off-policy evaluation.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    values: list[Any] = []
    if since is not None:
        conditions.append(sql.SQL("d.created_at >= %s"))
        values.append(since)
    if until is not None:
        conditions.append(sql.SQL("d.created_at < %s"))
        values.append(until)
    if stage is not None:
        conditions.append(sql.SQL("d.stage = %s"))
        values.append(stage)
    if tenant is not None:
        conditions.append(sql.SQL("r.tenant = %s"))
        values.append(tenant)
    if after is not None:
        conditions.append(sql.SQL("(d.created_at, d.id) > (%s, %s)"))
        values.extend((after[0], reference(after[1], "decision")))
    query = sql.SQL(
        "SELECT {columns} FROM decisions AS d JOIN requests AS r ON r.id = d.request_id "
        "WHERE {conditions} ORDER BY d.created_at, d.id LIMIT %s"
    ).format(
        columns=columns(DecisionRecord, "d"),
        conditions=sql.SQL(" AND ").join(conditions),
    )
    with translated("cannot list decisions"):
        return await _fetch(conn, query, (*values, limit))


async def _fetch(
    conn: AsyncConnection[Any], query: sql.Composed, values: Sequence[Any]
) -> list[DecisionRecord]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, values)
        return [_record(row) for row in await cursor.fetchall()]


def _record(row: dict[str, Any]) -> DecisionRecord:
    return DecisionRecord(**{**row, "arms": tuple(row["arms"])})
