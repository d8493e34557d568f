"""Select lists derived from the record classes, so a query returns exactly a record's fields."""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from typing import Any

from psycopg import sql


@cache
def columns(record: type[Any], alias: str | None = None) -> sql.Composed:
    """``"id", "tenant", ...`` (or ``"r"."id", ...`` with ``alias``) for a record dataclass."""
    names = (field.name for field in fields(record))
    if alias is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in names)
    return sql.SQL(", ").join(sql.Identifier(alias, name) for name in names)
