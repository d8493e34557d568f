"""Migrations apply once, atomically, under a lock; the packaged set matches the code."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg import AsyncConnection

from features.errors import NotFoundError, StoreError
from store import requests
from store.database import Database
from store.embedded import EmbeddedPostgres
from store.migrations import Migration, load_migrations, migrate, reset_data
from store.records import EMBEDDING_DIM
from tests.store.factories import a_request


@pytest.fixture
async def fresh_url(embedded_postgres: EmbeddedPostgres) -> str:
    """A new, empty database on the session's server."""
    return embedded_postgres.create_database(f"fresh_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def fresh(fresh_url: str) -> AsyncIterator[AsyncConnection[Any]]:
    async with await AsyncConnection.connect(fresh_url) as conn:
        yield conn


def test_the_packaged_migrations_are_ordered_and_match_the_code() -> None:
    migrations = load_migrations()

    assert [(m.version, m.name) for m in migrations] == [
        (1, "initial"),
        (2, "api_keys"),
        (3, "reward_policy_updates"),
        (4, "decision_outcomes"),
        (5, "conversation_turns"),
        (6, "embedding_space"),
        (7, "tenant_policies"),
        (8, "scopes_and_delegation"),
        (9, "decision_costs_and_traces"),
        (10, "embedding_changes"),
        (13, "neighbour_outcomes"),
    ]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in migrations[0].sql
    assert f"vector({EMBEDDING_DIM})" in migrations[0].sql


async def test_the_change_marker_applies_after_the_carried_outcomes_too(
    fresh: AsyncConnection[Any],
) -> None:
    """0010 arrives after 0013 on a store migrated before it: its trigger then marks the rows
    0013's triggers refresh, as it does on a fresh store."""
    await migrate(fresh, tuple(m for m in load_migrations() if m.version != 10))
    assert [m.version for m in await migrate(fresh)] == [10]
    rid, did = uuid.uuid4(), uuid.uuid4()
    vector = "[" + ",".join(["1"] + ["0"] * (EMBEDDING_DIM - 1)) + "]"
    await fresh.execute(
        "INSERT INTO requests (id, tenant, messages, params) VALUES (%s, 't', '[]', '{}')", (rid,)
    )
    await fresh.execute(
        "INSERT INTO query_embeddings (request_id, tenant, embedding) VALUES (%s, 't', %s)",
        (rid, vector),
    )
    await fresh.commit()
    inserted = await (await fresh.execute("SELECT change_xact FROM query_embeddings")).fetchone()
    await fresh.execute(
        "INSERT INTO decisions (id, request_id, stage, context, arms, chosen_arm, probability, "
        "pmf, policy_name, policy_version) VALUES (%s, %s, 'pre', '{}', '{a}', 'a', 1, "
        "'{\"a\": 1}', 'p', 1)",
        (did, rid),
    )
    await fresh.commit()
    cursor = await fresh.execute("SELECT change_xact, pre_arms FROM query_embeddings")
    refreshed = await cursor.fetchone()
    assert inserted is not None
    assert refreshed is not None
    assert 0 < inserted[0] < refreshed[0]
    assert refreshed[1] == ["a"]


async def test_migrating_twice_applies_once(fresh: AsyncConnection[Any]) -> None:
    first = await migrate(fresh)
    second = await migrate(fresh)

    assert [m.version for m in first] == [m.version for m in load_migrations()]
    assert second == ()


async def test_embeddings_stored_before_the_embedder_was_recorded_are_hashings(
    fresh: AsyncConnection[Any],
) -> None:
    before = tuple(m for m in load_migrations() if m.version < 6)
    await migrate(fresh, before)
    await fresh.execute(
        "INSERT INTO requests (id, tenant, messages, params) "
        "VALUES ('00000000-0000-0000-0000-000000000001', 'acme', '[]', '{}')"
    )
    vector = "[" + ",".join(["1"] + ["0"] * (EMBEDDING_DIM - 1)) + "]"
    await fresh.execute(
        "INSERT INTO query_embeddings (request_id, tenant, embedding) "
        "VALUES ('00000000-0000-0000-0000-000000000001', 'acme', %s::vector)",
        (vector,),
    )
    await fresh.commit()
    after = [m.version for m in load_migrations() if m.version >= 6]
    assert [m.version for m in await migrate(fresh)] == after
    cursor = await fresh.execute("SELECT embedder FROM embedding_space")
    assert await cursor.fetchall() == [("hashing",)]


async def test_rewards_logged_before_the_count_once_rule_keep_the_first_of_each_source(
    fresh: AsyncConnection[Any],
) -> None:
    await migrate(fresh, tuple(m for m in load_migrations() if m.version < 7))
    await fresh.execute(
        "INSERT INTO requests (id, tenant, messages, params) "
        "VALUES ('00000000-0000-0000-0000-000000000001', 'acme', '[]', '{}')"
    )
    await fresh.execute(
        "INSERT INTO decisions (id, request_id, stage, context, arms, chosen_arm, probability, "
        "pmf, policy_name, policy_version) VALUES ('00000000-0000-0000-0000-000000000002', "
        "'00000000-0000-0000-0000-000000000001', 'pre', '{}', '{a}', 'a', 1, '{}', 'pre', 0)"
    )
    for value, source, update in ((1.0, "user", 1), (0.0, "user", 2), (0.5, "judge", None)):
        await fresh.execute(
            "INSERT INTO rewards (decision_id, value, source, policy_update) "
            "VALUES ('00000000-0000-0000-0000-000000000002', %s, %s, %s)",
            (value, source, update),
        )
    await fresh.commit()
    await migrate(fresh)
    cursor = await fresh.execute(
        "SELECT value, source, counted, policy_name FROM rewards ORDER BY id"
    )
    assert await cursor.fetchall() == [
        (1.0, "user", True, "pre"),
        (0.0, "user", False, "pre"),
        (0.5, "judge", True, None),
    ]


async def test_keys_made_before_scopes_keep_route_feedback_and_read(
    fresh: AsyncConnection[Any],
) -> None:
    await migrate(fresh, tuple(m for m in load_migrations() if m.version < 8))
    await fresh.execute(
        "INSERT INTO api_keys (id, tenant, prefix, key_hash) "
        "VALUES ('00000000-0000-0000-0000-000000000002', 'acme', 'sr-old', %s)",
        ("a" * 64,),
    )
    await fresh.commit()
    after = [m.version for m in load_migrations() if m.version >= 8]
    assert [m.version for m in await migrate(fresh)] == after
    cursor = await fresh.execute("SELECT scopes FROM api_keys")
    assert await cursor.fetchall() == [(["route", "feedback", "read"],)]


async def test_embeddings_stored_before_0013_carry_their_outcomes(
    fresh: AsyncConnection[Any],
) -> None:
    await migrate(fresh, tuple(m for m in load_migrations() if m.version < 13))
    vector = "[" + ",".join(["1"] + ["0"] * (EMBEDDING_DIM - 1)) + "]"
    for request_id in (
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
    ):
        await fresh.execute(
            "INSERT INTO requests (id, tenant, messages, params) VALUES (%s, 'acme', '[]', '{}')",
            (request_id,),
        )
        await fresh.execute(
            "INSERT INTO query_embeddings (request_id, tenant, embedding) "
            "VALUES (%s, 'acme', %s::vector)",
            (request_id, vector),
        )
    decisions = [
        ("00000000-0000-0000-0000-0000000000d1", "pre", "small"),
        ("00000000-0000-0000-0000-0000000000d2", "pre", "large"),
        ("00000000-0000-0000-0000-0000000000d3", "post", "large"),
    ]
    for decision_id, stage, arm in decisions:
        await fresh.execute(
            "INSERT INTO decisions (id, request_id, stage, context, arms, chosen_arm, "
            "probability, pmf, policy_name, policy_version) VALUES (%s, "
            "'00000000-0000-0000-0000-000000000001', %s, '{}', ARRAY['small', 'large'], %s, "
            "1, '{}', 'p', 1)",
            (decision_id, stage, arm),
        )
    for value, source in ((1.0, "judge"), (0.5, "user")):
        await fresh.execute(
            "INSERT INTO rewards (decision_id, value, source) "
            "VALUES ('00000000-0000-0000-0000-0000000000d1', %s, %s)",
            (value, source),
        )
    await fresh.commit()
    assert [m.version for m in await migrate(fresh)] == [13]
    cursor = await fresh.execute(
        "SELECT request_id::text, pre_arms, pre_rewards, pre_decision_ids::text[] "
        "FROM query_embeddings ORDER BY request_id"
    )
    assert await cursor.fetchall() == [
        (
            "00000000-0000-0000-0000-000000000001",
            ["small", "large"],
            [0.75, None],
            ["00000000-0000-0000-0000-0000000000d1", "00000000-0000-0000-0000-0000000000d2"],
        ),
        ("00000000-0000-0000-0000-000000000002", None, None, None),
    ]


async def test_a_store_without_embeddings_records_no_embedder(
    fresh: AsyncConnection[Any],
) -> None:
    await migrate(fresh)
    cursor = await fresh.execute("SELECT count(*) FROM embedding_space")
    assert await cursor.fetchone() == (0,)


async def test_concurrent_migrators_apply_once(fresh_url: str) -> None:
    async with (
        await AsyncConnection.connect(fresh_url) as one,
        await AsyncConnection.connect(fresh_url) as other,
    ):
        results = await asyncio.gather(migrate(one), migrate(other))

    assert sorted(len(applied) for applied in results) == [0, len(load_migrations())]


async def test_a_failing_migration_applies_nothing(fresh: AsyncConnection[Any]) -> None:
    broken = Migration(99, "broken", "CREATE TABLE probe (id int); SELECT * FROM no_such_table;")

    with pytest.raises(StoreError, match="migration 0099_broken failed, nothing was applied"):
        await migrate(fresh, (*load_migrations(), broken))

    assert [m.version for m in await migrate(fresh)] == [m.version for m in load_migrations()]


async def test_a_database_migrated_by_a_newer_version_is_refused(database: Database) -> None:
    async with database.connection() as conn:
        known = ", ".join(str(m.version) for m in load_migrations())
        with pytest.raises(StoreError, match=rf"migration\(s\) \[{known}\].*upgrade signalroute"):
            await migrate(conn, ())


async def test_connect_migrates_a_fresh_database(fresh_url: str) -> None:
    database = await Database.connect(fresh_url)
    try:
        async with database.connection() as conn:
            assert await migrate(conn) == ()
            assert (await a_request(conn)).status == "accepted"
    finally:
        await database.close()


async def test_reset_data_empties_every_table(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        await reset_data(conn)
        with pytest.raises(NotFoundError):
            await requests.get_request(conn, request.id)
        assert await migrate(conn) == ()
