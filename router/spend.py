"""Spend per tenant and per session, against optional budgets (in memory, per process)."""

from __future__ import annotations

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

    def add(self, tenant: str, session: str | None, cost_usd: float) -> None:
        self._tenants[tenant] = self._tenants.get(tenant, 0.0) + cost_usd
        if session is not None:
            key = (tenant, session)
            self._sessions[key] = self._sessions.get(key, 0.0) + cost_usd

    def spend(self, tenant: str, session: str | None) -> Spend:
        return Spend(
            tenant_usd=self._tenants.get(tenant, 0.0),
            tenant_budget_usd=self._budgets.tenant_usd,
            session_usd=self._sessions.get((tenant, session), 0.0) if session else 0.0,
            session_budget_usd=self._budgets.session_usd if session else None,
        )
