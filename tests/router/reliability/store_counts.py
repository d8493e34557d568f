"""What the store holds of routed requests and of the pre-generation stage's rewards, for
the reliability tests."""

from __future__ import annotations

from typing import Any

from store.database import Database


async def requests_by_status(database: Database, ids: list[str]) -> list[tuple[Any, ...]]:
    """For the requests ``ids``, per status: how many requests, decisions, rewards, and
    distinct reward keys the store holds (a request without a decision and reward is not
    counted)."""
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT r.status, count(DISTINCT r.id), count(d.id), count(w.id), "
            "count(DISTINCT w.idempotency_key) FROM requests r "
            "JOIN decisions d ON d.request_id = r.id "
            "JOIN rewards w ON w.decision_id = d.id "
            "WHERE r.id = ANY(%s::uuid[]) GROUP BY r.status",
            (ids,),
        )
        return list(await cursor.fetchall())


async def counts(database: Database) -> tuple[int, int, int]:
    """Pre-stage rewards logged, how many the learner has marked learned, and the highest
    update number it gave one (0 when none)."""
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*), count(w.policy_update), coalesce(max(w.policy_update), 0) "
            "FROM rewards w JOIN decisions d ON d.id = w.decision_id WHERE d.stage = 'pre'"
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])
