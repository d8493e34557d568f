"""The hard cap on spend: a tenant or session whose budget is used up gets no more requests.

Budgets are also a routing signal (``budget_used``, from the same ``SpendTracker``): routing
shifts to cheaper arms as a budget runs down, and this guard refuses requests once it is gone.
A request is admitted while something remains, so the one that crosses the limit may overshoot
it by its own cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from features.errors import BudgetExceededError, StoreUnavailableError
from features.system import Spend
from router.spend import SpendTracker
from store import requests as request_log
from store.database import Database

SpendKey = tuple[str, str | None]


class BudgetGuard:
    """Restores spend from the store once per tenant and session, then enforces budgets."""

    def __init__(self, tracker: SpendTracker, database: Database) -> None:
        self._tracker = tracker
        self._database = database
        self._loads: dict[SpendKey, asyncio.Task[None]] = {}
        self._loaded: set[SpendKey] = set()

    async def admit(self, tenant: str, session: str | None) -> Spend:
        """The caller's spend; raises BudgetExceededError (402) when a budget is used up."""
        budgets = self._tracker.budgets
        try:
            await self._restored(tenant, None, self._restore_tenant)
        except StoreUnavailableError:
            if budgets.tenant_usd is not None:
                raise  # a budget that cannot be checked is not enforced blindly
            # No budget to enforce: route on; the spend is restored once the store is back.
        if session is not None and budgets.session_usd is not None:
            await self._restored(tenant, session, self._restore_session)
        spend = self._tracker.spend(tenant, session)
        exhausted(spend, tenant, session)
        return spend

    async def _restored(
        self,
        tenant: str,
        session: str | None,
        restore: Callable[[str, str | None], Awaitable[None]],
    ) -> None:
        """Run ``restore`` once per key; concurrent first requests wait for the same load, and
        a failed load is retried by the next request."""
        key = (tenant, session)
        if key in self._loaded:
            return
        task = self._loads.get(key)
        if task is None:
            task = self._loads[key] = asyncio.ensure_future(restore(tenant, session))
            task.add_done_callback(lambda done: self._settle(key, done))
        await asyncio.shield(task)

    def _settle(self, key: SpendKey, task: asyncio.Task[None]) -> None:
        self._loads.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._loaded.add(key)

    async def _restore_tenant(self, tenant: str, _: str | None) -> None:
        async with self._database.connection() as conn:
            spent = await request_log.spend_usd(conn, tenant)
        self._tracker.restore_tenant(tenant, spent)

    async def _restore_session(self, tenant: str, session: str | None) -> None:
        assert session is not None
        async with self._database.connection() as conn:
            spent = await request_log.spend_usd(conn, tenant, session)
        self._tracker.restore_session(tenant, session, spent)


def exhausted(spend: Spend, tenant: str, session: str | None) -> None:
    """Raise BudgetExceededError when the tenant's or the session's budget has nothing left."""
    if spend.tenant_budget_usd is not None and spend.tenant_usd >= spend.tenant_budget_usd:
        remaining = spend.tenant_budget_usd - spend.tenant_usd
        raise BudgetExceededError(
            f"tenant {tenant!r} has used its budget: spent ${spend.tenant_usd:.6f} of "
            f"${spend.tenant_budget_usd:g}, ${max(0.0, remaining):.6f} remaining",
            scope="tenant",
            remaining_usd=remaining,
        )
    if (
        session is not None
        and spend.session_budget_usd is not None
        and spend.session_usd >= spend.session_budget_usd
    ):
        remaining = spend.session_budget_usd - spend.session_usd
        raise BudgetExceededError(
            f"session {session!r} of tenant {tenant!r} has used its budget: spent "
            f"${spend.session_usd:.6f} of ${spend.session_budget_usd:g}, "
            f"${max(0.0, remaining):.6f} remaining",
            scope="session",
            remaining_usd=remaining,
        )
