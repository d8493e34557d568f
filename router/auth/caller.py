"""Who a request acts for: a tenant's API key, or the anonymous caller of local mode.

With ``SIGNALROUTE_AUTH=keys`` every request carries ``Authorization: Bearer sr-...``; the key
names the tenant, and a tenant named in a body must be that one. With ``none`` (local
single-user mode) nobody is checked and a body may name any tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from features.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from router.auth.tokens import TOKEN_PREFIX, display_prefix, hash_token
from store import api_keys
from store.database import Database
from store.records import API_KEY_SCOPES, DEFAULT_API_KEY_SCOPES, ApiKeyRecord, RequestRecord

DEFAULT_TENANT = "default"
"""The tenant of local mode when a request names none."""

AuthMode = Literal["none", "keys"]

Scope = Literal["route", "feedback", "read", "admin"]
"""What a key may do: ``route`` (``/route``, ``/route-and-run``, ``/v1/chat/completions``,
``/v1/models``), ``feedback`` (``/feedback``), ``read`` (``/policies``, ``/requests/{id}``,
the dashboard) and ``admin`` (everything the other three allow)."""

SCOPES: tuple[Scope, ...] = get_args(Scope)
DEFAULT_SCOPES: tuple[Scope, ...] = tuple(s for s in SCOPES if s in DEFAULT_API_KEY_SCOPES)
"""What ``signalroute keys create`` grants when no ``--scope`` is named (and what keys made
before scopes existed keep): route, feedback, read."""
assert SCOPES == API_KEY_SCOPES, "the store's scopes are these"


@dataclass(frozen=True)
class Caller:
    """The caller of one request: ``key`` is None in local mode."""

    key: ApiKeyRecord | None = None

    @property
    def key_id(self) -> str | None:
        return None if self.key is None else str(self.key.id)

    @property
    def scope(self) -> str | None:
        """The only tenant whose data this caller may see, or None for every tenant."""
        return None if self.key is None else self.key.tenant

    def require(self, scope: Scope) -> None:
        """PermissionDeniedError (403, naming ``scope``) unless the caller's key has ``scope``
        or ``admin``; local mode (no key) may do everything."""
        if self.key is None or scope in self.key.scopes or "admin" in self.key.scopes:
            return
        held = ", ".join(s for s in SCOPES if s in self.key.scopes) or "none"
        raise PermissionDeniedError(
            f"this API key lacks the {scope!r} scope (it has: {held}); ask an administrator "
            f"for a key with it (`signalroute keys create --tenant {self.key.tenant} "
            f"--scope {scope}`)"
        )

    def tenant(self, requested: str | None) -> str:
        """The tenant a request acts for. With a key, a requested tenant must be the key's
        (PermissionDeniedError otherwise); without, it is the requested one or the default."""
        if self.key is None:
            return requested or DEFAULT_TENANT
        if requested is not None and requested != self.key.tenant:
            raise PermissionDeniedError(
                f"this API key belongs to tenant {self.key.tenant!r}; a request may not act "
                f"for tenant {requested!r} (leave 'tenant' out, the key decides it)"
            )
        return self.key.tenant

    def check_sees(self, record: RequestRecord) -> None:
        """NotFoundError unless the request is of the caller's tenant (any, without a key):
        another tenant's request is reported as absent, not as forbidden."""
        if self.key is not None and record.tenant != self.key.tenant:
            raise NotFoundError(f"no request {record.id}")

    def check_owns(self, record: RequestRecord) -> None:
        """As ``check_sees``, and PermissionDeniedError unless the caller's key made it."""
        self.check_sees(record)
        if self.key is not None and record.api_key_id != self.key.id:
            raise PermissionDeniedError(
                f"request {record.id} was made with another API key; feedback must come with "
                "the key that made the request"
            )


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; AuthenticationError if none."""
    if authorization is None or not authorization.strip():
        raise AuthenticationError(
            "missing API key: send 'Authorization: Bearer sr-...' (an administrator creates "
            "keys with `signalroute keys create --tenant NAME`)"
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <API key>'")
    return token.strip()


async def authenticate(mode: AuthMode, database: Database, authorization: str | None) -> Caller:
    """The caller a request's Authorization header stands for.

    Raises AuthenticationError (401) in ``keys`` mode for a missing, unknown or revoked key.
    """
    if mode == "none":
        return Caller()
    token = bearer_token(authorization)
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationError(f"invalid API key: signalroute keys start with {TOKEN_PREFIX!r}")
    async with database.connection() as conn:
        key = await api_keys.find_by_hash(conn, hash_token(token))
    if key is None:
        raise AuthenticationError(f"invalid API key {display_prefix(token)}...: no such key")
    if key.revoked_at is not None:
        raise AuthenticationError(
            f"API key {key.prefix}... was revoked at {key.revoked_at.isoformat()}; "
            "ask an administrator for a new one"
        )
    return Caller(key)
