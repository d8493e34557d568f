"""Policy snapshots: serialized learner states, versioned 1, 2, 3, ... per policy name.

Versions of one name are handed out under a transaction-scoped advisory lock, so concurrent
savers get distinct, consecutive versions instead of a unique-violation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from store.columns import columns
from store.records import SnapshotRecord
from store.translation import translated

_LOCK_CLASS = 0x534E_4150  # "SNAP": the advisory-lock class of snapshot version counters.


async def save_snapshot(
    conn: AsyncConnection[Any],
    name: str,
    model_bytes: bytes,
    meta: Mapping[str, Any],
) -> int:
    """Store a new snapshot of policy ``name``; return its version (1 for the first).

    ``meta`` must be JSON-serialisable. The version is visible to others once the caller's
    transaction commits; until then, other savers of the same name wait.
    """
    with translated(f"cannot save a snapshot of policy {name!r}"):
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, name)
            )
            cursor = await conn.execute(
                "INSERT INTO policy_snapshots (name, version, model, meta) "
                "SELECT %(name)s, COALESCE(MAX(version), 0) + 1, %(model)s, %(meta)s "
                "FROM policy_snapshots WHERE name = %(name)s RETURNING version",
                {"name": name, "model": bytes(model_bytes), "meta": Jsonb(dict(meta))},
            )
            row = await cursor.fetchone()
    assert row is not None, "INSERT ... RETURNING returned no row"
    return int(row[0])


async def latest_snapshot(conn: AsyncConnection[Any], name: str) -> SnapshotRecord | None:
    """The highest version of policy ``name``, or None when it was never saved."""
    query = sql.SQL(
        "SELECT {} FROM policy_snapshots WHERE name = %s ORDER BY version DESC LIMIT 1"
    ).format(columns(SnapshotRecord))
    with translated(f"cannot read the latest snapshot of policy {name!r}"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(query, (name,))
            row = await cursor.fetchone()
    return None if row is None else SnapshotRecord(**row)


async def latest_version(conn: AsyncConnection[Any], name: str) -> int | None:
    """The highest snapshot version of policy ``name`` (without loading it), or None."""
    with translated(f"cannot read the snapshot version of policy {name!r}"):
        cursor = await conn.execute(
            "SELECT max(version) FROM policy_snapshots WHERE name = %s", (name,)
        )
        row = await cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def snapshot_at(conn: AsyncConnection[Any], name: str, version: int) -> SnapshotRecord | None:
    """Version ``version`` of policy ``name``, or None when there is no such snapshot."""
    query = sql.SQL("SELECT {} FROM policy_snapshots WHERE name = %s AND version = %s").format(
        columns(SnapshotRecord)
    )
    with translated(f"cannot read snapshot v{version} of policy {name!r}"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(query, (name, version))
            row = await cursor.fetchone()
    return None if row is None else SnapshotRecord(**row)


async def latest_versions(conn: AsyncConnection[Any], names: Sequence[str]) -> dict[str, int]:
    """The highest snapshot version of each of ``names`` that has one, in one query."""
    if not names:
        return {}
    with translated(f"cannot read the snapshot versions of {len(names)} policies"):
        cursor = await conn.execute(
            "SELECT name, max(version) FROM policy_snapshots WHERE name = ANY(%s) GROUP BY name",
            (list(names),),
        )
        rows = await cursor.fetchall()
    return {str(name): int(version) for name, version in rows}


@dataclass(frozen=True, slots=True)
class SnapshotFootprint:
    """What the newest snapshots of a set of policies weigh in the store."""

    policies: int
    model_bytes: int
    all_versions_bytes: int


async def footprint(conn: AsyncConnection[Any], name_pattern: str) -> SnapshotFootprint:
    """How many policies have a name matching the SQL LIKE ``name_pattern``, the bytes of
    their newest snapshots' models, and the bytes of every version kept."""
    with translated(f"cannot measure the snapshots of {name_pattern!r}"):
        cursor = await conn.execute(
            "SELECT count(*), COALESCE(sum(octet_length(s.model)), 0) FROM policy_snapshots AS s "
            "WHERE s.name LIKE %(p)s AND s.version = (SELECT max(version) FROM policy_snapshots "
            "WHERE name = s.name)",
            {"p": name_pattern},
        )
        newest = await cursor.fetchone()
        cursor = await conn.execute(
            "SELECT COALESCE(sum(octet_length(model)), 0) FROM policy_snapshots WHERE name LIKE %s",
            (name_pattern,),
        )
        every = await cursor.fetchone()
    assert newest is not None
    assert every is not None
    return SnapshotFootprint(
        policies=int(newest[0]), model_bytes=int(newest[1]), all_versions_bytes=int(every[0])
    )


async def prune(conn: AsyncConnection[Any], name: str, keep: int) -> int:
    """Delete all but the newest ``keep`` snapshots of policy ``name``; returns how many
    were deleted."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    with translated(f"cannot prune the snapshots of policy {name!r}"):
        cursor = await conn.execute(
            "DELETE FROM policy_snapshots WHERE name = %(name)s AND version <= "
            "(SELECT max(version) FROM policy_snapshots WHERE name = %(name)s) - %(keep)s",
            {"name": name, "keep": keep},
        )
    return cursor.rowcount
