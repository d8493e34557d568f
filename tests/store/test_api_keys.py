"""API keys are stored as hashes, found by hash, listed, revoked once; requests name their key."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from features.errors import ConflictError, NotFoundError, RequestError
from store import api_keys, requests
from store.database import Database
from tests.store.factories import a_request


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def test_a_key_is_found_by_its_hash_only(database: Database) -> None:
    async with database.connection() as conn:
        key = await api_keys.insert_key(
            conn, tenant="acme", name="ci", prefix="sr-abcdefg", key_hash=digest("sr-abcdefgh")
        )
        found = await api_keys.find_by_hash(conn, digest("sr-abcdefgh"))
        absent = await api_keys.find_by_hash(conn, digest("sr-other"))
        cursor = await conn.execute("SELECT count(*) FROM api_keys WHERE key_hash LIKE 'sr-%'")
        row = await cursor.fetchone()

    assert found == key
    assert (key.tenant, key.name, key.prefix, key.revoked) == ("acme", "ci", "sr-abcdefg", False)
    assert absent is None
    assert row == (0,)
    assert "key_hash" not in repr(key)


async def test_only_sha256_digests_and_real_tenants_are_stored(database: Database) -> None:
    async with database.connection() as conn:
        with pytest.raises(RequestError, match="stored as a sha256 hex digest"):
            await api_keys.insert_key(conn, tenant="acme", prefix="sr-x", key_hash="sr-plain")
    async with database.connection() as conn:
        with pytest.raises(RequestError, match="non-empty tenant"):
            await api_keys.insert_key(conn, tenant="", prefix="sr-x", key_hash=digest("a"))
    async with database.connection() as conn:
        await api_keys.insert_key(conn, tenant="acme", prefix="sr-x", key_hash=digest("a"))
        with pytest.raises(ConflictError):
            await api_keys.insert_key(conn, tenant="other", prefix="sr-x", key_hash=digest("a"))


async def test_list_revoke_and_count(database: Database) -> None:
    async with database.connection() as conn:
        first = await api_keys.insert_key(conn, tenant="acme", prefix="p1", key_hash=digest("1"))
        second = await api_keys.insert_key(conn, tenant="beta", prefix="p2", key_hash=digest("2"))
        revoked = await api_keys.revoke_key(conn, str(first.id))
        everyone = await api_keys.list_keys(conn)
        acme = await api_keys.list_keys(conn, tenant="acme")
        active = await api_keys.count_active_keys(conn)
        with pytest.raises(ConflictError, match="already revoked"):
            await api_keys.revoke_key(conn, first.id)
        with pytest.raises(NotFoundError, match="no API key"):
            await api_keys.revoke_key(conn, uuid.uuid4())
        with pytest.raises(NotFoundError, match="not a valid id"):
            await api_keys.revoke_key(conn, "sr-abc")

    assert revoked.revoked
    assert revoked.revoked_at is not None
    assert [k.id for k in everyone] == [first.id, second.id]
    assert [k.id for k in acme] == [first.id]
    assert active == 1


async def test_a_request_records_the_key_that_made_it(database: Database) -> None:
    async with database.connection() as conn:
        key = await api_keys.insert_key(conn, tenant="acme", prefix="p", key_hash=digest("k"))
        direct = await a_request(conn, tenant="acme", api_key_id=key.id)
        reread = await requests.get_request(conn, direct.id)
        unkeyed = await a_request(conn)
        with pytest.raises(NotFoundError):
            await a_request(conn, tenant="acme", api_key_id=uuid.uuid4())

    assert direct.api_key_id == key.id
    assert reread.api_key_id == key.id
    assert unkeyed.api_key_id is None
