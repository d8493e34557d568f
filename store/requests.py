"""The request log: one row per accepted chat request, completed or failed exactly once.

Every function takes the caller's connection and runs in the caller's transaction (with a
connection from ``Database.connection()``, the block commits on exit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from features.errors import ConflictError, NotFoundError
from store.columns import columns
from store.ids import Id, new_id, reference
from store.records import RequestRecord, RequestStatus
from store.translation import translated

_RETURNING = sql.SQL(" RETURNING {}").format(columns(RequestRecord))


async def insert_request(
    conn: AsyncConnection[Any],
    *,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    tenant: str = "default",
    user_id: str | None = None,
    session_id: str | None = None,
    request_id: Id | None = None,
    api_key_id: Id | None = None,
) -> RequestRecord:
    """Log an accepted request (status ``accepted``); ``request_id`` defaults to a new uuid.

    ``messages`` and ``params`` must be JSON-serialisable. Raises ConflictError if the id
    exists, NotFoundError if ``api_key_id`` names no key.
    """
    query = sql.SQL(
        "INSERT INTO requests (id, tenant, user_id, session_id, messages, params, api_key_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    values = (
        new_id(request_id),
        tenant,
        user_id,
        session_id,
        Jsonb([dict(message) for message in messages]),
        Jsonb(dict(params)),
        None if api_key_id is None else reference(api_key_id, "API key"),
    )
    with translated("cannot log the request"):
        return await _one(conn, query + _RETURNING, values)


async def complete_request(
    conn: AsyncConnection[Any],
    request_id: Id,
    *,
    output: str,
    model: str,
    cost_usd: float | None,
    latency_ms: float | None,
) -> RequestRecord:
    """Record the answer ``model`` (the arm that served it) gave to an accepted request.

    Raises NotFoundError for an unknown id, ConflictError if it already completed or failed.
    """
    query = sql.SQL(
        "UPDATE requests SET status = 'completed', output = %s, model = %s, cost_usd = %s, "
        "latency_ms = %s, completed_at = clock_timestamp() WHERE id = %s AND status = 'accepted'"
    )
    rid = reference(request_id, "request")
    with translated(f"cannot complete request {rid}"):
        row = await _maybe_one(conn, query + _RETURNING, (output, model, cost_usd, latency_ms, rid))
        if row is None:
            raise await _not_accepted(conn, rid, "complete")
    return row


async def fail_request(
    conn: AsyncConnection[Any],
    request_id: Id,
    *,
    error: str,
    model: str | None = None,
    latency_ms: float | None = None,
) -> RequestRecord:
    """Record why an accepted request failed (``model``: the last arm tried, if any).

    Raises NotFoundError for an unknown id, ConflictError if it already completed or failed.
    """
    query = sql.SQL(
        "UPDATE requests SET status = 'failed', error = %s, model = %s, latency_ms = %s, "
        "completed_at = clock_timestamp() WHERE id = %s AND status = 'accepted'"
    )
    rid = reference(request_id, "request")
    with translated(f"cannot fail request {rid}"):
        row = await _maybe_one(conn, query + _RETURNING, (error, model, latency_ms, rid))
        if row is None:
            raise await _not_accepted(conn, rid, "fail")
    return row


async def spend_usd(
    conn: AsyncConnection[Any], tenant: str, session_id: str | None = None
) -> float:
    """What ``tenant`` (and, when given, its session ``session_id``) spent, over all time.

    The sum of ``cost_usd`` of its completed requests.
    """
    query = "SELECT coalesce(sum(cost_usd), 0) FROM requests WHERE tenant = %s"
    values: tuple[str, ...] = (tenant,)
    if session_id is not None:
        query += " AND session_id = %s"
        values = (tenant, session_id)
    with translated(f"cannot sum the spend of tenant {tenant!r}"):
        cursor = await conn.execute(query, values)
        row = await cursor.fetchone()
    assert row is not None
    return float(row[0])


async def previous_turn_arm(
    conn: AsyncConnection[Any],
    tenant: str,
    *,
    turn_key: str | None = None,
    session_id: str | None = None,
) -> str | None:
    """The arm (``model``) of ``tenant``'s newest completed (or delegated) request whose
    ``turn_key`` param is ``turn_key`` (else, when none is, in session ``session_id``); None
    when there is none."""
    lookups: list[tuple[str, str]] = []
    if turn_key is not None:
        lookups.append((_BY_TURN_KEY, turn_key))
    if session_id is not None:
        lookups.append((_BY_SESSION, session_id))
    for query, value in lookups:
        with translated(f"cannot look up the previous turn of tenant {tenant!r}"):
            cursor = await conn.execute(query, (tenant, value))
            row = await cursor.fetchone()
        if row is not None and row[0] is not None:
            return str(row[0])
    return None


_BY_TURN_KEY = (
    "SELECT model FROM requests WHERE tenant = %s AND params->>'turn_key' = %s "
    "AND status IN ('completed', 'delegated') ORDER BY created_at DESC LIMIT 1"
)
_BY_SESSION = (
    "SELECT model FROM requests WHERE tenant = %s AND session_id = %s "
    "AND status IN ('completed', 'delegated') ORDER BY created_at DESC LIMIT 1"
)


async def get_request(conn: AsyncConnection[Any], request_id: Id) -> RequestRecord:
    """The request with this id. Raises NotFoundError if there is none."""
    rid = reference(request_id, "request")
    query = sql.SQL("SELECT {} FROM requests WHERE id = %s").format(columns(RequestRecord))
    with translated(f"cannot read request {rid}"):
        row = await _maybe_one(conn, query, (rid,))
    if row is None:
        raise NotFoundError(f"no request {rid}")
    return row


async def _not_accepted(conn: AsyncConnection[Any], rid: UUID, verb: str) -> Exception:
    """Why an update of a request in state ``accepted`` matched no row."""
    cursor = await conn.execute("SELECT status FROM requests WHERE id = %s", (rid,))
    found = await cursor.fetchone()
    if found is None:
        return NotFoundError(f"cannot {verb} request {rid}: no such request")
    return ConflictError(f"cannot {verb} request {rid}: it is already {found[0]}")


async def _one(
    conn: AsyncConnection[Any], query: sql.Composed, values: Sequence[Any]
) -> RequestRecord:
    record = await _maybe_one(conn, query, values)
    assert record is not None, "INSERT ... RETURNING returned no row"
    return record


async def _maybe_one(
    conn: AsyncConnection[Any], query: sql.Composed, values: Sequence[Any]
) -> RequestRecord | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, values)
        row = await cursor.fetchone()
    return None if row is None else _record(row)


def _record(row: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        **{**row, "messages": tuple(row["messages"]), "status": RequestStatus(row["status"])}
    )
