"""Row ids as callers pass them: a ``UUID`` or its string form."""

from __future__ import annotations

from uuid import UUID, uuid4

from features.errors import NotFoundError

Id = UUID | str
"""A uuid row id, or its canonical string (as it travels through HTTP headers and JSON)."""


def reference(value: Id, what: str) -> UUID:
    """The uuid of a row the caller refers to; a malformed id refers to nothing.

    Raises NotFoundError("no <what> <value>") for a string that is not a uuid.
    """
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except (ValueError, TypeError):
        raise NotFoundError(f"no {what} {value!r}: not a valid id") from None


def new_id(value: Id | None) -> UUID:
    """The id of a row about to be inserted: ``value``, or a fresh random uuid.

    Raises ValueError for a string that is not a uuid (a bug in the caller).
    """
    if value is None:
        return uuid4()
    return value if isinstance(value, UUID) else UUID(value)
