"""API keys: each bound to one tenant, allowed some scopes, stored as the sha256 of its
token, revocable.

The store never sees a token, only its hash: making tokens and hashing them is the caller's
job (``router.auth.tokens``). Every function runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from features.errors import ConflictError, NotFoundError
from store.columns import columns
from store.ids import Id, new_id, reference
from store.records import API_KEY_SCOPES, DEFAULT_API_KEY_SCOPES, ApiKeyRecord
from store.translation import translated


async def insert_key(
    conn: AsyncConnection[Any],
    *,
    tenant: str,
    key_hash: str,
    prefix: str,
    name: str | None = None,
    key_id: Id | None = None,
    scopes: Iterable[str] = DEFAULT_API_KEY_SCOPES,
) -> ApiKeyRecord:
    """Store a new key of ``tenant`` allowed ``scopes``; ``key_id`` defaults to a new uuid.

    Raises RequestError for an empty tenant, a hash that is not 64 hex digits, no scope or
    an unknown one (``API_KEY_SCOPES``); ConflictError when the hash is already stored.
    """
    query = sql.SQL(
        "INSERT INTO api_keys (id, tenant, name, prefix, key_hash, scopes) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING {}"
    ).format(columns(ApiKeyRecord))
    ordered = [scope for scope in API_KEY_SCOPES if scope in set(scopes)]
    ordered += sorted(set(scopes) - set(API_KEY_SCOPES))  # refused by the constraint
    with translated("cannot store the API key"):
        rows = await _fetch(conn, query, (new_id(key_id), tenant, name, prefix, key_hash, ordered))
    return rows[0]


async def find_by_hash(conn: AsyncConnection[Any], key_hash: str) -> ApiKeyRecord | None:
    """The key whose token hashes to ``key_hash`` (revoked or not), or None."""
    query = sql.SQL("SELECT {} FROM api_keys WHERE key_hash = %s").format(columns(ApiKeyRecord))
    with translated("cannot look up the API key"):
        rows = await _fetch(conn, query, (key_hash,))
    return rows[0] if rows else None


async def list_keys(conn: AsyncConnection[Any], *, tenant: str | None = None) -> list[ApiKeyRecord]:
    """Every key (of ``tenant`` when given), oldest first, revoked ones included."""
    where = sql.SQL("WHERE tenant = %s") if tenant is not None else sql.SQL("")
    query = sql.SQL("SELECT {} FROM api_keys {} ORDER BY created_at, id").format(
        columns(ApiKeyRecord), where
    )
    with translated("cannot list API keys"):
        return await _fetch(conn, query, (tenant,) if tenant is not None else ())


async def count_active_keys(conn: AsyncConnection[Any]) -> int:
    """How many keys are not revoked."""
    with translated("cannot count API keys"):
        cursor = await conn.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def revoke_key(conn: AsyncConnection[Any], key_id: Id) -> ApiKeyRecord:
    """Revoke a key from now on; requests it already made keep their attribution.

    Raises NotFoundError for an unknown id, ConflictError when the key is already revoked.
    """
    kid = reference(key_id, "API key")
    query = sql.SQL(
        "UPDATE api_keys SET revoked_at = clock_timestamp() "
        "WHERE id = %s AND revoked_at IS NULL RETURNING {}"
    ).format(columns(ApiKeyRecord))
    with translated(f"cannot revoke API key {kid}"):
        rows = await _fetch(conn, query, (kid,))
        if rows:
            return rows[0]
        cursor = await conn.execute("SELECT revoked_at FROM api_keys WHERE id = %s", (kid,))
        found = await cursor.fetchone()
    if found is None:
        raise NotFoundError(f"no API key {kid}")
    raise ConflictError(f"API key {kid} was already revoked at {found[0].isoformat()}")


async def _fetch(
    conn: AsyncConnection[Any], query: sql.Composed, values: Sequence[Any]
) -> list[ApiKeyRecord]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, values)
        return [
            ApiKeyRecord(**{**row, "scopes": frozenset(row["scopes"])})
            for row in await cursor.fetchall()
        ]
