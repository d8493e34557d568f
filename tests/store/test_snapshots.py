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


async def test_pruning_keeps_the_newest_versions_and_footprint_weighs_them(
    database: Database,
) -> None:
    async with database.connection() as conn:
        for size in (10, 20, 30, 40):
            await snapshots.save_snapshot(conn, "pre:tenant:acme", b"x" * size, {})
        await snapshots.save_snapshot(conn, "pre:tenant:beta", b"y" * 5, {})
        deleted = await snapshots.prune(conn, "pre:tenant:acme", 2)
        versions = await snapshots.latest_versions(conn, ["pre:tenant:acme", "pre:tenant:beta"])
        oldest_kept = await snapshots.snapshot_at(conn, "pre:tenant:acme", 3)
        gone = await snapshots.snapshot_at(conn, "pre:tenant:acme", 2)
        weight = await snapshots.footprint(conn, "%:tenant:%")
    assert deleted == 2
    assert versions == {"pre:tenant:acme": 4, "pre:tenant:beta": 1}
    assert oldest_kept is not None
    assert gone is None
    assert (weight.policies, weight.model_bytes, weight.all_versions_bytes) == (2, 45, 75)
