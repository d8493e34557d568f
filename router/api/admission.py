"""What every routed or bypassed request goes through around the router: the budget check
before it, and after it the key attribution and the metrics of its trace."""

from __future__ import annotations

import logging

from features.errors import BudgetExceededError, NotFoundError
from router.auth.caller import Caller
from router.runtime import Runtime
from router.trace import RouteFailed, RouteResult
from store import decisions as decision_log
from store import requests as request_log
from store.records import RequestRecord

log = logging.getLogger("signalroute.api")


async def admit(runtime: Runtime, tenant: str, session: str | None) -> None:
    """Refuse (402) a request whose tenant or session budget is used up."""
    try:
        await runtime.budget.admit(tenant, session)
    except BudgetExceededError as exc:
        runtime.metrics.budget_rejection(exc.scope)
        raise


async def settle(runtime: Runtime, caller: Caller, event: RouteResult | RouteFailed) -> None:
    """Record what a routed request's trace shows in the metrics and the log. (Its key is
    logged with the request: ``RouteRequest.api_key_id``.)"""
    runtime.metrics.route(event.decisions)
    if isinstance(event, RouteResult):
        log.info(
            "request %s answered by %s ($%.6f, %.0f ms, %d decisions)",
            event.request_id,
            event.model,
            event.cost_usd,
            event.latency_ms,
            len(event.decisions),
            extra={"routed_request_id": event.request_id, "arm": event.model},
        )
    else:
        log.warning(
            "request %s failed: %s",
            event.request_id,
            event.error.message,
            extra={"routed_request_id": event.request_id},
        )


async def feedback_target(
    runtime: Runtime, caller: Caller, *, request_id: str | None, decision_id: str | None
) -> RequestRecord:
    """The request feedback is about, once the caller is shown to own it: another tenant's
    request or decision is reported absent (404), another key's is forbidden (403)."""
    async with runtime.database.connection() as conn:
        try:
            if request_id is None:
                assert decision_id is not None
                decision = await decision_log.get_decision(conn, decision_id)
                request_id = str(decision.request_id)
            record = await request_log.get_request(conn, request_id)
            caller.check_sees(record)
        except NotFoundError:
            what = f"request {request_id}" if decision_id is None else f"decision {decision_id}"
            raise NotFoundError(f"no {what}") from None
    caller.check_owns(record)
    return record
