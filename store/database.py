"""``Database``: the connection pool the service owns, opened once by the lifespan.

Opening checks the server before the pool exists: it connects once (failing within
``connect_timeout_s`` on an unreachable server), applies the pending migrations (the first
creates the ``vector`` extension), and checks pgvector's version. Only then does the pool
open. Each connection it makes has pgvector's types registered and pgvector's iterative
index scan on for its whole session (a filtered HNSW look-up then still finds ``k`` rows), and
runs in autocommit: ``connection()`` wraps its block in a transaction, while
``connection(transaction=False)`` sends a single statement in one round trip, with no
BEGIN/COMMIT around it. Every failure is a ``StoreUnavailableError`` whose message names the
URL (password redacted) and the problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from features import json_codec
from features.errors import SignalrouteError, StoreUnavailableError
from store.migrations import migrate
from store.translation import first_line

MIN_PGVECTOR: Final = (0, 8)
"""pgvector's iterative index scans, which filtered kNN relies on, came in 0.8."""

_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class Database:
    """A pool of connections to one Postgres database with signalroute's schema."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], url: str) -> None:
        """Wrap an open pool; use ``Database.connect`` to make one."""
        self._pool = pool
        self.url = url
        """The database URL, password redacted: safe to log."""

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout_s: float = 5.0,
        acquire_timeout_s: float = 10.0,
        run_migrations: bool = True,
    ) -> Database:
        """Check the server, migrate it (unless ``run_migrations`` is False), open the pool.

        Raises StoreUnavailableError within about ``connect_timeout_s`` (libpq rounds it up
        to whole seconds, at least 2) when the server is unreachable or refuses us, and when
        pgvector is missing or older than 0.8.
        """
        redacted = redact_url(url)
        try:
            conninfo = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailableError(
                f"invalid database URL {redacted}: {first_line(exc)}"
            ) from exc
        connect_kwargs: dict[str, Any] = {}
        if "connect_timeout" not in conninfo:
            connect_kwargs["connect_timeout"] = max(2, math.ceil(connect_timeout_s))
        try:
            conn = await AsyncConnection.connect(url, **connect_kwargs)
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot connect to the database {redacted}: {first_line(exc)}; "
                "check that the server runs and the URL is right"
            ) from exc
        try:
            async with conn:
                if run_migrations:
                    await migrate(conn)
                await _check_pgvector(conn)
        except SignalrouteError as exc:
            raise StoreUnavailableError(f"database {redacted}: {exc.message}") from exc
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"database {redacted} failed while starting up: {first_line(exc)}"
            ) from exc

        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={**connect_kwargs, "autocommit": True},
            configure=_configure,
            timeout=acquire_timeout_s,
            name="signalroute",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=max(2.0, connect_timeout_s))
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailableError(
                f"cannot open {min_size} connection(s) to the database {redacted} "
                f"within {connect_timeout_s:g} s"
            ) from exc
        return cls(pool, redacted)

    async def close(self) -> None:
        """Close every connection; in-flight ``connection()`` blocks finish first."""
        await self._pool.close()

    @asynccontextmanager
    async def connection(self, *, transaction: bool = True) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection: the block is one transaction, committed when it exits
        normally and rolled back when it raises. With ``transaction=False`` each statement
        commits on its own (autocommit): for a block of one statement, or of reads.

        Raises StoreUnavailableError when no connection frees up within
        ``acquire_timeout_s`` or the connection breaks.
        """
        try:
            async with self._pool.connection() as conn:
                if transaction:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
        except PoolTimeout as exc:
            raise StoreUnavailableError(
                f"no connection to the database {self.url} became available: {first_line(exc)}"
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"the database {self.url} failed: {first_line(exc)}"
            ) from exc

    async def ping(self, timeout_s: float = 2.0) -> bool:
        """Whether the database answers a trivial query within ``timeout_s``. Never raises."""
        try:
            async with self._pool.connection(timeout=timeout_s) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout):
            return False
        return True


async def _configure(conn: AsyncConnection[Any]) -> None:
    """Set up a new pooled connection (autocommit): pgvector's types, ``jsonb`` parameters
    rendered by orjson where it renders them as the standard library does
    (``features.json_codec.dumps_for_store``), and iterative index scans (``strict_order``:
    results stay in distance order) for the whole session."""
    await register_vector_async(conn)
    set_json_dumps(json_codec.dumps_for_store, conn)
    await conn.execute("SET hnsw.iterative_scan = strict_order")


def redact_url(url: str) -> str:
    """``url`` with its password (URL userinfo or ``password=`` parameter) replaced by ***."""
    if "://" not in url:
        return _PASSWORD_PARAM.sub(r"\1***", url)
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    userinfo, at, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if at and password:
        netloc = f"{user}:***@{hosts}"
    params = parse_qsl(query, keep_blank_values=True)
    if any(key.lower() == "password" for key, _ in params):
        redacted = [(key, "***" if key.lower() == "password" else value) for key, value in params]
        query = urlencode(redacted, safe="/*:")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


async def _check_pgvector(conn: AsyncConnection[Any]) -> None:
    """Raise StoreUnavailableError unless the ``vector`` extension (>= 0.8) is installed."""
    cursor = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    row = await cursor.fetchone()
    await conn.rollback()
    if row is None:
        raise StoreUnavailableError(
            "the pgvector extension is not installed in this database; connect with "
            "run_migrations=True or run CREATE EXTENSION vector"
        )
    version = tuple(int(part) for part in re.findall(r"\d+", str(row[0]))[:2])
    if version < MIN_PGVECTOR:
        raise StoreUnavailableError(
            f"pgvector {row[0]} is too old; signalroute needs pgvector >= 0.8 "
            "(ALTER EXTENSION vector UPDATE after upgrading it on the server)"
        )
