"""Opening fails fast and clearly; a connection block is one transaction; ping never raises."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest

from features.errors import NotFoundError, StoreUnavailableError
from store import requests
from store.database import Database, redact_url
from store.embedded import EmbeddedPostgres
from tests.store.factories import a_request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_refused_connection_fails_at_once_naming_the_redacted_url() -> None:
    url = f"postgresql://router:s3cret@127.0.0.1:{free_port()}/signalroute"
    started = time.monotonic()

    with pytest.raises(StoreUnavailableError) as raised:
        await Database.connect(url)

    assert time.monotonic() - started < 2
    message = raised.value.message
    assert "cannot connect to the database postgresql://router:***@127.0.0.1:" in message
    assert "Connection refused" in message
    assert "s3cret" not in message


async def test_a_server_that_never_answers_times_out() -> None:
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError, match="timeout"):
            await Database.connect(f"postgresql://u@127.0.0.1:{port}/db", connect_timeout_s=2)
    finally:
        server.close()
    assert time.monotonic() - started < 4


async def test_an_invalid_url_is_reported() -> None:
    with pytest.raises(StoreUnavailableError, match="invalid database URL"):
        await Database.connect("this is not a url")


async def test_a_database_without_pgvector_is_reported(
    embedded_postgres: EmbeddedPostgres,
) -> None:
    url = embedded_postgres.create_database(f"bare_{uuid.uuid4().hex[:8]}")

    with pytest.raises(StoreUnavailableError, match="pgvector extension is not installed"):
        await Database.connect(url, run_migrations=False)


async def test_a_connection_block_commits_or_rolls_back(database: Database) -> None:
    dropped_id = uuid.uuid4()

    async def insert_then_fail() -> None:
        async with database.connection() as conn:
            await a_request(conn, request_id=dropped_id)
            raise RuntimeError("abort the block")

    async with database.connection() as conn:
        kept = await a_request(conn)
    with pytest.raises(RuntimeError):
        await insert_then_fail()

    async with database.connection() as conn:
        assert (await requests.get_request(conn, kept.id)).id == kept.id
        with pytest.raises(NotFoundError):
            await requests.get_request(conn, dropped_id)


async def test_a_block_without_transaction_commits_each_statement(database: Database) -> None:
    async def insert_then_fail() -> uuid.UUID:
        async with database.connection(transaction=False) as conn:
            await a_request(conn, request_id=(kept := uuid.uuid4()))
            raise RuntimeError("the block fails after its statement")
        return kept  # pragma: no cover

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    async with database.connection(transaction=False) as conn:
        cursor = await conn.execute("SELECT count(*) FROM requests")
        assert (await cursor.fetchone()) == (1,)
        assert conn.info.transaction_status.name == "IDLE"  # nothing left open


async def test_every_pooled_connection_scans_hnsw_iteratively(database_url: str) -> None:
    database = await Database.connect(database_url, min_size=2, max_size=2)
    try:

        async def setting(transaction: bool) -> str:
            async with database.connection(transaction=transaction) as conn:
                await asyncio.sleep(0.01)  # hold it, so both connections serve
                cursor = await conn.execute("SHOW hnsw.iterative_scan")
                row = await cursor.fetchone()
                assert row is not None
                return str(row[0])

        found = await asyncio.gather(*(setting(t) for t in (True, False, True, False)))
        assert found == ["strict_order"] * 4
    finally:
        await database.close()


async def test_ping_answers_until_closed(database_url: str) -> None:
    database = await Database.connect(database_url, max_size=1)
    assert await database.ping()
    await database.close()
    assert not await database.ping()


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://postgres:@/db?host=/tmp/pg", "postgresql://postgres:@/db?host=/tmp/pg"),
        ("postgresql://h/db?user=u&password=pw", "postgresql://h/db?user=u&password=***"),
        ("host=h user=u password='p w' dbname=d", "host=h user=u password=*** dbname=d"),
    ],
)
def test_redact_url_hides_passwords(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
