"""Snapshot versions count up per policy name, also under concurrent savers."""

from __future__ import annotations

import asyncio

from store import snapshots
from store.database import Database


async def test_versions_increase_per_name(database: Database) -> None:
    async with database.connection() as conn:
        assert await snapshots.latest_snapshot(conn, "vw-cb") is None
        first = await snapshots.save_snapshot(conn, "vw-cb", b"\x00weights-1", {"examples": 10})
        other = await snapshots.save_snapshot(conn, "knn", b"knn", {})
        second = await snapshots.save_snapshot(conn, "vw-cb", b"\x00weights-2", {"examples": 20})
        latest = await snapshots.latest_snapshot(conn, "vw-cb")

    assert (first, second, other) == (1, 2, 1)
    assert latest is not None
    assert (latest.name, latest.version) == ("vw-cb", 2)
    assert latest.model == b"\x00weights-2"
    assert latest.meta == {"examples": 20}
    assert "weights" not in repr(latest)


async def test_concurrent_savers_get_distinct_versions(database: Database) -> None:
    async def save(model: bytes) -> int:
        async with database.connection() as conn:
            return await snapshots.save_snapshot(conn, "vw-cb", model, {})

    versions = await asyncio.gather(*(save(bytes([i])) for i in range(4)))

    assert sorted(versions) == [1, 2, 3, 4]
