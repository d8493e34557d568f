"""psycopg errors, translated into signalroute's exception hierarchy.

Record functions run their statements inside ``translated(action)``: what escapes is a
``SignalrouteError`` whose message starts with the action and says what was wrong, never a
psycopg error.

* a CHECK / NOT NULL violation or a bad value (SQLSTATE class 22) -> ``RequestError``
* a foreign-key violation (the referenced row does not exist) -> ``NotFoundError``
* a unique violation (the row already exists) -> ``ConflictError``
* a lost or refused connection, a timeout, a deadlock -> ``StoreUnavailableError``
* anything else psycopg raises -> ``StoreError``
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg import errors

from features.errors import (
    ConflictError,
    NotFoundError,
    RequestError,
    SignalrouteError,
    StoreError,
    StoreUnavailableError,
)

CONSTRAINT_REASONS: Final[Mapping[str, str]] = {
    "requests_status_known": "a request status is accepted, completed, failed or delegated",
    "decisions_probability_range": "the probability of the chosen arm must be in (0, 1]",
    "decisions_arms_nonempty": "a decision needs at least one eligible arm",
    "decisions_chosen_arm_eligible": "the chosen arm must be one of the eligible arms",
    "rewards_value_range": "a reward value must be in [0, 1]",
    "policy_snapshots_version_positive": "a snapshot version must be positive",
    "api_keys_tenant_nonempty": "an API key needs a non-empty tenant",
    "api_keys_key_hash_sha256": "an API key is stored as a sha256 hex digest",
    "api_keys_scopes_known": (
        "an API key needs at least one scope, each of route, feedback, read, admin"
    ),
}
"""Why each named CHECK constraint of the schema exists, as the error message says it."""


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Re-raise any psycopg error of the block as a SignalrouteError prefixed by ``action``."""
    try:
        yield
    except SignalrouteError:
        raise
    except (errors.CheckViolation, errors.NotNullViolation) as exc:
        raise RequestError(f"{action}: {_constraint_reason(exc)}") from exc
    except errors.ForeignKeyViolation as exc:
        raise NotFoundError(f"{action}: {_detail(exc)}") from exc
    except errors.UniqueViolation as exc:
        raise ConflictError(f"{action}: {_detail(exc)}") from exc
    except psycopg.DataError as exc:
        raise RequestError(f"{action}: invalid value: {first_line(exc)}") from exc
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(f"{action}: the database failed: {first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"{action}: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (libpq messages add hints on further lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _constraint_reason(exc: psycopg.Error) -> str:
    name = exc.diag.constraint_name
    if name is not None and name in CONSTRAINT_REASONS:
        return f"{CONSTRAINT_REASONS[name]} (constraint {name})"
    if isinstance(exc, errors.NotNullViolation) and exc.diag.column_name:
        return f"{exc.diag.table_name}.{exc.diag.column_name} must not be null"
    return first_line(exc)


def _detail(exc: psycopg.Error) -> str:
    """The server's detail line ("Key (id)=(...) already exists."), else its message."""
    return exc.diag.message_detail or first_line(exc)
