"""What the store holds of the pre-generation stage's rewards, for the reliability tests."""

from __future__ import annotations

from store.database import Database


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
