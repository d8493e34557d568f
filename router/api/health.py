"""Liveness and readiness (the store, and which arms can serve)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from router.api.deps import get_runtime
from router.readiness import unavailable_arms
from router.runtime import Runtime

routes = APIRouter(tags=["health"])


@routes.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@routes.get("/readyz")
async def readyz(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JSONResponse:
    """Ready (200) while the store answers and at least one arm can serve; 503 otherwise.

    ``unavailable_arms`` names each arm that cannot serve now and why (its circuit is open,
    its provider's address does not answer); ``serving_arms`` counts the others.
    """
    store_ok = await runtime.database.ping()
    unreachable = (
        await runtime.reachability.unreachable() if runtime.reachability is not None else {}
    )
    names = runtime.pool.names
    unavailable = unavailable_arms(
        names, {arm: runtime.health.snapshot(arm) for arm in names}, unreachable
    )
    serving = len(names) - len(unavailable)
    ready = store_ok and serving > 0
    body: dict[str, Any] = {
        "status": "ready" if ready else "unavailable",
        "store": "ok" if store_ok else "unreachable",
        "arms": len(names),
        "serving_arms": serving,
        "unavailable_arms": unavailable,
    }
    if runtime.writer is not None and runtime.writer.spooled:
        body["spooled_journals"] = runtime.writer.spooled
    return JSONResponse(body, status_code=200 if ready else 503)
