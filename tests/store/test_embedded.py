"""The embedded server starts, stops for real, restarts on its data, and fails clearly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from features.errors import StoreUnavailableError
from store.embedded import PG_SUBDIR, EmbeddedPostgres


def accepts_connections(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_start_stop_and_restart_on_the_same_data(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres()
    url = server.start(pg_data_dir, database="kept")
    assert (pg_data_dir / PG_SUBDIR / "PG_VERSION").exists()
    assert "/kept?" in url
    assert accepts_connections(url)

    server.stop()
    assert not server.running
    assert not accepts_connections(url)
    server.stop()  # idempotent

    again = server.start(pg_data_dir, database="kept")
    try:
        assert again == url
        assert accepts_connections(again)
    finally:
        server.stop()


def test_stop_stops_even_after_an_owner_died_without_cleaning_up(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres()
    server.start(pg_data_dir)
    server.stop()
    # A process killed with SIGKILL leaves its pid in the owner list.
    (pg_data_dir / PG_SUBDIR / ".handle_pids.json").write_text(json.dumps([dead_pid()]))

    url = server.start(pg_data_dir)
    server.stop()

    assert not accepts_connections(url)


def test_a_data_dir_that_is_a_file_is_refused(pg_data_dir: Path) -> None:
    not_a_dir = pg_data_dir / "data"
    not_a_dir.write_text("")

    with pytest.raises(StoreUnavailableError, match="choose a writable data_dir"):
        EmbeddedPostgres().start(not_a_dir)


def test_a_cluster_of_another_postgres_version_is_refused(pg_data_dir: Path) -> None:
    (pg_data_dir / PG_SUBDIR).mkdir()
    (pg_data_dir / PG_SUBDIR / "PG_VERSION").write_text("16\n")

    with pytest.raises(StoreUnavailableError, match=r"PostgreSQL 16 cluster.*upgrade_db"):
        EmbeddedPostgres().start(pg_data_dir)


def test_create_database_is_idempotent_and_validates_names(
    embedded_postgres: EmbeddedPostgres,
) -> None:
    first = embedded_postgres.create_database("twice")
    assert embedded_postgres.create_database("twice") == first
    assert accepts_connections(first)
    with pytest.raises(ValueError, match="invalid database name"):
        embedded_postgres.create_database('bad"; DROP')


def test_a_throwaway_database_commits_without_waiting_for_the_disk(
    embedded_postgres: EmbeddedPostgres,
) -> None:
    def synchronous_commit(url: str) -> str:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
        assert row is not None
        return str(row[0])

    assert synchronous_commit(embedded_postgres.create_database("kept")) == "on"
    assert synchronous_commit(embedded_postgres.create_database("scratch", durable=False)) == "off"


def test_using_a_stopped_server_says_so() -> None:
    with pytest.raises(StoreUnavailableError, match="not started"):
        EmbeddedPostgres().create_database("x")
