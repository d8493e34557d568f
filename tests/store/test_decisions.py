"""Decisions round-trip, the propensity constraints hold, and replay filters work."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from features.errors import NotFoundError, RequestError
from store import decisions
from store.database import Database
from tests.store.factories import a_decision, a_request


async def test_insert_and_get_round_trip(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        inserted = await a_decision(conn, request.id)
        fetched = await decisions.get_decision(conn, str(inserted.id))

    assert fetched == inserted
    assert fetched.request_id == request.id
    assert fetched.arms == ("small", "large")
    assert (fetched.chosen_arm, fetched.probability) == ("small", 0.8)
    assert fetched.pmf == {"small": 0.8, "large": 0.2}
    assert fetched.context == {"query_length": 14.0, "category": "math"}
    assert (fetched.policy_name, fetched.policy_version, fetched.stage) == ("vw-cb", 3, "pre")


async def test_the_outcome_masked_arms_and_details_round_trip(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        bare = await a_decision(conn, request.id)
        settled = await a_decision(
            conn,
            request.id,
            outcome="cut: format: JSON requested",
            masked={"large": "circuit open"},
            details={"detector": "format", "chars_before_cut": 12},
        )
        fetched = await decisions.get_decision(conn, str(settled.id))

    assert (bare.outcome, bare.masked, bare.details) == (None, None, None)
    assert fetched.outcome == "cut: format: JSON requested"
    assert fetched.masked == {"large": "circuit open"}
    assert fetched.details == {"detector": "format", "chars_before_cut": 12}


@pytest.mark.parametrize("probability", [0.0, -0.1, 1.5])
async def test_a_probability_outside_0_1_is_rejected(
    database: Database, probability: float
) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        with pytest.raises(
            RequestError, match=r"probability of the chosen arm must be in \(0, 1\]"
        ):
            await a_decision(conn, request.id, probability=probability)


async def test_a_certain_choice_is_accepted(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        decision = await a_decision(conn, request.id, probability=1.0, pmf={"small": 1.0})

    assert decision.probability == 1.0


async def test_the_chosen_arm_must_be_eligible(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        with pytest.raises(RequestError, match="chosen arm must be one of the eligible arms"):
            await a_decision(conn, request.id, chosen_arm="huge")


async def test_a_non_finite_feature_is_rejected(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        with pytest.raises(RequestError, match="invalid value"):
            await a_decision(conn, request.id, context={"x": float("nan")})


async def test_a_decision_needs_an_existing_request(database: Database) -> None:
    async with database.connection() as conn:
        with pytest.raises(NotFoundError, match='not present in table "requests"'):
            async with conn.transaction():
                await a_decision(conn, uuid.uuid4())
        with pytest.raises(NotFoundError, match="no decision"):
            await decisions.get_decision(conn, uuid.uuid4())


async def test_list_for_request_oldest_first(database: Database) -> None:
    async with database.connection() as conn:
        request = await a_request(conn)
        other = await a_request(conn)
        pre = await a_decision(conn, request.id)
        post = await a_decision(conn, request.id, stage="post")
        await a_decision(conn, other.id)

        listed = await decisions.list_decisions_for_request(conn, request.id)

    assert [d.id for d in listed] == [pre.id, post.id]


async def test_list_decisions_filters(database: Database) -> None:
    async with database.connection() as conn:
        acme = await a_request(conn, tenant="acme")
        globex = await a_request(conn, tenant="globex")
        first = await a_decision(conn, acme.id)
        second = await a_decision(conn, acme.id, stage="post")
        third = await a_decision(conn, globex.id)

        everything = await decisions.list_decisions(conn)
        acme_only = await decisions.list_decisions(conn, tenant="acme")
        pre_only = await decisions.list_decisions(conn, stage="pre")
        window = await decisions.list_decisions(
            conn, since=second.created_at, until=third.created_at
        )
        after_all = await decisions.list_decisions(
            conn, since=third.created_at + timedelta(microseconds=1)
        )
        limited = await decisions.list_decisions(conn, limit=2)

    assert [d.id for d in everything] == [first.id, second.id, third.id]
    assert [d.id for d in acme_only] == [first.id, second.id]
    assert [d.id for d in pre_only] == [first.id, third.id]
    assert [d.id for d in window] == [second.id]
    assert after_all == []
    assert [d.id for d in limited] == [first.id, second.id]
