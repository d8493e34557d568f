"""The hard cap: a used-up budget refuses requests, and spend is restored from the store."""

from __future__ import annotations

import asyncio

import pytest

from features.errors import BudgetExceededError
from features.system import Spend
from router.budget import BudgetGuard, exhausted
from router.spend import Budgets, SpendTracker
from store import requests
from store.database import Database
from tests.store.factories import a_request


def admits(spend: Spend, session: str | None = None) -> bool:
    """Whether the budget check lets a request with this spend through."""
    try:
        exhausted(spend, "acme", session)
    except BudgetExceededError:
        return False
    return True


def test_a_budget_with_something_left_admits() -> None:
    assert admits(Spend(tenant_usd=0.9, tenant_budget_usd=1.0))
    assert admits(Spend(tenant_usd=5.0), "s")  # no budget, no cap
    assert not admits(Spend(tenant_usd=1.0, tenant_budget_usd=1.0))  # the edge is refused


def test_a_used_up_budget_names_scope_and_remaining() -> None:
    with pytest.raises(BudgetExceededError) as tenant:
        exhausted(Spend(tenant_usd=1.25, tenant_budget_usd=1.0), "acme", None)
    assert tenant.value.scope == "tenant"
    assert tenant.value.remaining_usd == pytest.approx(-0.25)
    assert "spent $1.250000 of $1, $0.000000 remaining" in tenant.value.message
    assert tenant.value.status_code == 402
    with pytest.raises(BudgetExceededError, match="session 's1' of tenant 'acme'") as session:
        exhausted(Spend(session_usd=0.5, session_budget_usd=0.5), "acme", "s1")
    assert session.value.scope == "session"


async def test_spend_is_restored_from_the_store_once(database: Database) -> None:
    async with database.connection() as conn:
        for session, cost in [("s1", 0.6), ("s2", 0.3)]:
            request = await a_request(conn, tenant="acme", session_id=session)
            await requests.complete_request(
                conn, request.id, output="x", model="m", cost_usd=cost, latency_ms=1.0
            )
    tracker = SpendTracker(Budgets(tenant_usd=2.0, session_usd=0.5))
    guard = BudgetGuard(tracker, database)

    spends = await asyncio.gather(*(guard.admit("acme", "s2") for _ in range(5)))
    assert [s.tenant_usd for s in spends] == pytest.approx([0.9] * 5)
    assert spends[0].session_usd == pytest.approx(0.3)
    tracker.add("acme", "s2", 0.25)  # spent in this process: not overwritten by a reload
    with pytest.raises(BudgetExceededError, match="session 's2'"):
        await guard.admit("acme", "s2")
    with pytest.raises(BudgetExceededError, match="session 's1'"):
        await guard.admit("acme", "s1")
    assert (await guard.admit("other", None)).tenant_usd == 0.0
    assert tracker.tenants() == {"acme": pytest.approx(1.15), "other": 0.0}
