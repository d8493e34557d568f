"""Versioned schema migrations, applied at start-up.

Migrations are the SQL files ``store/migrations/NNNN_name.sql`` (package data), applied in
version order. ``migrate`` applies the pending ones in one transaction under an advisory lock,
so concurrent starters wait for each other and a failed migration leaves nothing behind, and
records each in ``schema_migrations(version, name, applied_at)``. Running it again applies
nothing. A migration is never edited once released: changes go into a new file.

The first migration creates the ``vector`` extension, so it must run before pgvector's types
are registered on a connection (``Database.connect`` does both, in that order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, errors, sql

from features.errors import StoreError, StoreUnavailableError
from store.translation import first_line, translated

MIGRATION_FILE: Final = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
"""How a migration file is named: a four-digit version, an underscore, a snake_case name."""

_LOCK_KEY: Final = 0x5349_474E_524F  # "SIGNRO": the advisory lock that serializes migrators.

_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: its SQL runs exactly once per database."""

    version: int
    name: str
    sql: str


def load_migrations() -> tuple[Migration, ...]:
    """The packaged migrations, by version. Raises StoreError for a misnamed or duplicate file."""
    folder = resources.files("store").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            raise StoreError(f"migration file {entry.name!r} is not named NNNN_snake_case.sql")
        version = int(match["version"])
        if version in found:
            raise StoreError(f"two migration files share version {version}")
        found[version] = Migration(version, match["name"], entry.read_text(encoding="utf-8"))
    return tuple(found[version] for version in sorted(found))


async def migrate(
    conn: AsyncConnection[Any], migrations: tuple[Migration, ...] | None = None
) -> tuple[Migration, ...]:
    """Apply the pending ``migrations`` (default: the packaged ones); return those applied.

    All of them commit together or not at all. Raises StoreUnavailableError when the server
    lacks pgvector or the user may not create it, and StoreError when the database holds a
    migration this code does not know (it was migrated by a newer signalroute).
    """
    plan = load_migrations() if migrations is None else migrations
    with translated("cannot migrate the database schema"):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await conn.execute(_CREATE_HISTORY)
            cursor = await conn.execute("SELECT version FROM schema_migrations")
            applied = {int(row[0]) for row in await cursor.fetchall()}
            unknown = applied - {m.version for m in plan}
            if unknown:
                raise StoreError(
                    f"the database has schema migration(s) {sorted(unknown)} that this version "
                    "of signalroute does not know; upgrade signalroute"
                )
            pending = tuple(m for m in plan if m.version not in applied)
            for migration in pending:
                await _apply(conn, migration)
    return pending


async def reset_data(conn: AsyncConnection[Any]) -> None:
    """Delete every row of every table except the migration history; restart sequences.

    For tests and local resets only: the service never calls it.
    """
    with translated("cannot reset the database"):
        cursor = await conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'schema_migrations' ORDER BY tablename"
        )
        tables = [str(row[0]) for row in await cursor.fetchall()]
        if tables:
            await conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(table) for table in tables)
                )
            )


async def _apply(conn: AsyncConnection[Any], migration: Migration) -> None:
    label = f"{migration.version:04d}_{migration.name}"
    try:
        await conn.execute(migration.sql.encode("utf-8"))
    except (errors.FeatureNotSupported, errors.UndefinedFile) as exc:
        if "vector" in str(exc):
            raise StoreUnavailableError(
                f"migration {label}: the server has no pgvector extension ({first_line(exc)}); "
                "install pgvector >= 0.8 on it, or unset the database URL to use the embedded "
                "server"
            ) from exc
        raise StoreError(
            f"migration {label} failed, nothing was applied: {first_line(exc)}"
        ) from exc
    except errors.InsufficientPrivilege as exc:
        raise StoreUnavailableError(
            f"migration {label}: the database user lacks a privilege ({first_line(exc)}); "
            "have an administrator run it (e.g. CREATE EXTENSION vector) or grant it"
        ) from exc
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        raise StoreError(
            f"migration {label} failed, nothing was applied: {first_line(exc)}"
        ) from exc
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
        (migration.version, migration.name),
    )
