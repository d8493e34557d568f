"""Fixtures shared by every test package.

The store fixtures run against a real embedded PostgreSQL 18 + pgvector, started once per
test session (about a second) and only when a test asks for it:

* ``database`` (per test): an open ``Database`` on a migrated schema with every table empty.
  Use it as ``async with database.connection() as conn: ...``.
* ``database_url`` (per session): the URL of that same database, for code under test that
  opens its own ``Database`` (e.g. an app built from settings); ask for ``database`` too to
  start from empty tables.
* ``embedded_postgres`` (per session): the server, e.g. to ``create_database`` a fresh one.
* ``pg_data_dir`` (per test): an empty folder to start another ``EmbeddedPostgres`` in.

Server data never goes under pytest's ``tmp_path``: as root, the server's ``pgserver`` user
must traverse every ancestor of its data, and each pytest session re-tightens
``/tmp/pytest-of-<user>`` to 0700, which breaks servers of any concurrently running session.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from store.database import Database
from store.embedded import EmbeddedPostgres
from store.migrations import reset_data

TEST_DATABASE = "signalroute_test"


def _server_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="signalroute-test-pg-"))


@pytest.fixture
def pg_data_dir() -> Iterator[Path]:
    """An empty folder outside pytest's temp root, deleted after the test."""
    data_dir = _server_dir()
    yield data_dir
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_postgres() -> Iterator[EmbeddedPostgres]:
    """The session's embedded server; stopped and deleted after the last test."""
    data_dir = _server_dir()
    server = EmbeddedPostgres()
    try:
        server.start(data_dir)
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(embedded_postgres: EmbeddedPostgres) -> str:
    """The URL of the session's test database (migrated once ``database`` is used)."""
    return embedded_postgres.create_database(TEST_DATABASE)


@pytest.fixture(scope="session")
async def session_database(database_url: str) -> AsyncIterator[Database]:
    """One migrated ``Database`` for the whole session; prefer ``database``."""
    database = await Database.connect(database_url, max_size=4)
    yield database
    await database.close()


@pytest.fixture
async def database(session_database: Database) -> Database:
    """The session's ``Database`` with every table emptied (the schema stays migrated)."""
    async with session_database.connection() as conn:
        await reset_data(conn)
    return session_database


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dashboard-screenshots",
        default=None,
        metavar="DIR",
        help="save the dashboard browser test's screenshots in DIR (docs/images for the docs)",
    )
