"""API keys for service tests, stored the way ``signalroute keys create`` stores them."""

from __future__ import annotations

from collections.abc import Iterable

from router.auth.caller import DEFAULT_SCOPES
from router.auth.tokens import display_prefix, hash_token, new_token
from store import api_keys
from store.database import Database
from store.records import ApiKeyRecord


async def new_key(
    database: Database, tenant: str, scopes: Iterable[str] = DEFAULT_SCOPES
) -> tuple[str, ApiKeyRecord]:
    """A fresh token of ``tenant`` allowed ``scopes``, and its stored record."""
    token = new_token()
    async with database.connection() as conn:
        key = await api_keys.insert_key(
            conn,
            tenant=tenant,
            prefix=display_prefix(token),
            key_hash=hash_token(token),
            scopes=scopes,
        )
    return token, key


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
