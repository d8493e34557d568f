"""Spend per tenant and per session, against optional budgets (in memory, per process).

The tracker starts empty; ``router.budget.BudgetGuard`` restores a tenant's (and a session's)
spend from the store the first time this process sees it, so spend survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from features.system import Spend


@dataclass(frozen=True)
class Budgets:
    """Optional USD limits; None means unlimited."""

    tenant_usd: float | None = None
    session_usd: float | None = None


class SpendTracker:
    """Adds up what each tenant and session spent; answers with ``Spend`` snapshots."""

    def __init__(self, budgets: Budgets | None = None) -> None:
        self._budgets = budgets or Budgets()
        self._tenants: dict[str, float] = {}
        self._sessions: dict[tuple[str, str], float] = {}

    @property
    def budgets(self) -> Budgets:
        return self._budgets

    def add(self, tenant: str, session: str | None, cost_usd: float) -> None:
        self._tenants[tenant] = self._tenants.get(tenant, 0.0) + cost_usd
        if session is not None:
            key = (tenant, session)
            self._sessions[key] = self._sessions.get(key, 0.0) + cost_usd

    def restore_tenant(self, tenant: str, spent_usd: float) -> None:
        """Set a tenant's spend to what the store says it spent (before it spends here)."""
        self._tenants[tenant] = spent_usd

    def restore_session(self, tenant: str, session: str, spent_usd: float) -> None:
        """Set a session's spend to what the store says it spent (before it spends here)."""
        self._sessions[(tenant, session)] = spent_usd

    def spend(self, tenant: str, session: str | None) -> Spend:
        return Spend(
            tenant_usd=self._tenants.get(tenant, 0.0),
            tenant_budget_usd=self._budgets.tenant_usd,
            session_usd=self._sessions.get((tenant, session), 0.0) if session else 0.0,
            session_budget_usd=self._budgets.session_usd if session else None,
        )

    def tenants(self) -> Mapping[str, float]:
        """Spend of every tenant this process knows of (a copy)."""
        return dict(self._tenants)
