"""Tokens, the Authorization header, and what a caller may see, name and touch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from features.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from router.auth.caller import Caller, authenticate, bearer_token
from router.auth.tokens import TOKEN_PREFIX, display_prefix, hash_token, new_token
from store import api_keys
from store.database import Database
from store.records import ApiKeyRecord, RequestRecord, RequestStatus


def a_key(tenant: str = "acme") -> ApiKeyRecord:
    return ApiKeyRecord(
        id=uuid.uuid4(),
        tenant=tenant,
        name=None,
        prefix="sr-abcdefg",
        key_hash="0" * 64,
        created_at=datetime.now(UTC),
        revoked_at=None,
    )


def a_request_record(tenant: str, api_key_id: uuid.UUID | None) -> RequestRecord:
    return RequestRecord(
        id=uuid.uuid4(),
        tenant=tenant,
        user_id=None,
        session_id=None,
        created_at=datetime.now(UTC),
        messages=(),
        params={},
        status=RequestStatus.COMPLETED,
        output="x",
        model="m",
        cost_usd=0.0,
        latency_ms=1.0,
        error=None,
        completed_at=None,
        api_key_id=api_key_id,
    )


def test_tokens_are_random_prefixed_and_hashed() -> None:
    one, two = new_token(), new_token()
    assert one.startswith(TOKEN_PREFIX)
    assert len(one) > 40
    assert one != two
    assert hash_token(one) == hash_token(one) != hash_token(two)
    assert len(hash_token(one)) == 64
    assert display_prefix(one) == one[:10]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing API key"),
        ("", "missing API key"),
        ("Basic abc", "must be 'Bearer <API key>'"),
        ("Bearer", "must be 'Bearer <API key>'"),
    ],
)
def test_bad_authorization_headers(header: str | None, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        bearer_token(header)


def test_bearer_token_is_read_case_insensitively() -> None:
    assert bearer_token("bearer sr-xyz ") == "sr-xyz"


def test_a_key_decides_the_tenant() -> None:
    caller = Caller(a_key("acme"))
    assert caller.tenant(None) == "acme"
    assert caller.tenant("acme") == "acme"
    with pytest.raises(PermissionDeniedError, match="belongs to tenant 'acme'"):
        caller.tenant("beta")
    local = Caller()
    assert local.tenant(None) == "default"
    assert local.tenant("beta") == "beta"
    assert local.scope is None
    assert caller.scope == "acme"


def test_a_key_sees_its_tenant_and_owns_its_own_requests() -> None:
    key = a_key("acme")
    caller = Caller(key)
    mine = a_request_record("acme", key.id)
    colleague = a_request_record("acme", uuid.uuid4())
    foreign = a_request_record("beta", key.id)
    caller.check_owns(mine)
    caller.check_sees(colleague)
    with pytest.raises(PermissionDeniedError, match="made with another API key"):
        caller.check_owns(colleague)
    with pytest.raises(NotFoundError):
        caller.check_sees(foreign)
    Caller().check_owns(foreign)  # local mode: anything goes


async def test_authenticate(database: Database) -> None:
    token, revoked_token = new_token(), new_token()
    async with database.connection() as conn:
        key = await api_keys.insert_key(
            conn, tenant="acme", prefix=display_prefix(token), key_hash=hash_token(token)
        )
        old = await api_keys.insert_key(
            conn,
            tenant="acme",
            prefix=display_prefix(revoked_token),
            key_hash=hash_token(revoked_token),
        )
        await api_keys.revoke_key(conn, old.id)

    assert (await authenticate("none", database, None)).key is None
    assert (await authenticate("keys", database, f"Bearer {token}")).key == key
    with pytest.raises(AuthenticationError, match="no such key"):
        await authenticate("keys", database, f"Bearer {new_token()}")
    with pytest.raises(AuthenticationError, match="keys start with 'sr-'"):
        await authenticate("keys", database, "Bearer sk-openai")
    with pytest.raises(AuthenticationError, match="was revoked"):
        await authenticate("keys", database, f"Bearer {revoked_token}")
