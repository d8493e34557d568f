"""A request round-trips and moves from accepted to completed or failed exactly once."""

from __future__ import annotations

import uuid

import pytest

from features.errors import ConflictError, NotFoundError
from store import requests
from store.database import Database
from store.records import RequestStatus
from tests.store.factories import a_request


async def test_insert_and_get_round_trip(database: Database) -> None:
    request_id = uuid.uuid4()
    async with database.connection() as conn:
        inserted = await requests.insert_request(
            conn,
            request_id=str(request_id),
            tenant="acme",
            user_id="u1",
            session_id="s1",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            params={"max_tokens": 64, "stream": False},
        )
        fetched = await requests.get_request(conn, request_id)

    assert fetched == inserted
    assert fetched.id == request_id
    assert (fetched.tenant, fetched.user_id, fetched.session_id) == ("acme", "u1", "s1")
    assert fetched.messages[1] == {"role": "user", "content": "Hi"}
    assert fetched.params == {"max_tokens": 64, "stream": False}
    assert fetched.status is RequestStatus.ACCEPTED
    assert fetched.created_at.tzinfo is not None
    assert fetched.completed_at is None


async def test_defaults(database: Database) -> None:
    async with database.connection() as conn:
        request = await requests.insert_request(conn, messages=[], params={})

    assert request.tenant == "default"
    assert request.user_id is None
    assert isinstance(request.id, uuid.UUID)


async def test_complete(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        done = await requests.complete_request(
            conn, request.id, output="4", model="small", cost_usd=0.0002, latency_ms=812.5
        )

    assert done.status is RequestStatus.COMPLETED
    assert (done.output, done.model, done.cost_usd, done.latency_ms) == (
        "4",
        "small",
        0.0002,
        812.5,
    )
    assert done.completed_at is not None
    assert done.completed_at >= done.created_at


async def test_fail(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        failed = await requests.fail_request(conn, str(request.id), error="provider timed out")

    assert failed.status is RequestStatus.FAILED
    assert failed.error == "provider timed out"
    assert failed.output is None


async def test_a_request_finishes_only_once(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        await requests.fail_request(conn, request.id, error="boom")

        with pytest.raises(ConflictError, match="already failed"):
            await requests.complete_request(
                conn, request.id, output="late", model="small", cost_usd=None, latency_ms=None
            )
        with pytest.raises(ConflictError, match="already failed"):
            await requests.fail_request(conn, request.id, error="again")


async def test_unknown_or_malformed_ids_are_not_found(database: Database) -> None:
    async with database.connection() as conn:
        with pytest.raises(NotFoundError, match="no request"):
            await requests.get_request(conn, uuid.uuid4())
        with pytest.raises(NotFoundError, match="not a valid id"):
            await requests.get_request(conn, "chatcmpl-123")
        with pytest.raises(NotFoundError, match="no such request"):
            await requests.complete_request(
                conn, uuid.uuid4(), output="x", model="small", cost_usd=None, latency_ms=None
            )


async def test_a_duplicate_id_conflicts(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        with pytest.raises(ConflictError, match="already exists"):
            await a_request(conn, request_id=request.id)


async def test_spend_sums_completed_costs_per_tenant_and_session(database: Database) -> None:
    async with database.connection() as conn:
        for tenant, session, cost in [("a", "s1", 0.25), ("a", "s2", 0.5), ("b", "s1", 2.0)]:
            request = await a_request(conn, tenant=tenant, session_id=session)
            await requests.complete_request(
                conn, request.id, output="x", model="m", cost_usd=cost, latency_ms=1.0
            )
        await a_request(conn, tenant="a", session_id="s1")  # accepted, not yet priced

        assert await requests.spend_usd(conn, "a") == pytest.approx(0.75)
        assert await requests.spend_usd(conn, "a", "s1") == pytest.approx(0.25)
        assert await requests.spend_usd(conn, "b") == pytest.approx(2.0)
        assert await requests.spend_usd(conn, "nobody") == 0.0


async def test_the_previous_turn_is_found_by_turn_key_then_session(database: Database) -> None:
    async with database.connection() as conn:
        first = await requests.insert_request(
            conn, messages=[], params={"turn_key": "k1"}, tenant="t", session_id="s"
        )
        await requests.complete_request(
            conn, first.id, output="a", model="small", cost_usd=0.0, latency_ms=1.0
        )
        later = await requests.insert_request(
            conn, messages=[], params={"turn_key": "k2"}, tenant="t", session_id="s"
        )
        await requests.complete_request(
            conn, later.id, output="b", model="large", cost_usd=0.0, latency_ms=1.0
        )
        by_key = await requests.previous_turn_arm(conn, "t", turn_key="k1", session_id="s")
        by_session = await requests.previous_turn_arm(conn, "t", turn_key="k9", session_id="s")
        elsewhere = await requests.previous_turn_arm(conn, "other", turn_key="k1")
        nothing = await requests.previous_turn_arm(conn, "t")
    assert (by_key, by_session, elsewhere, nothing) == ("small", "large", None, None)
