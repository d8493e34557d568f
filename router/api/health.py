"""Liveness and readiness."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from router.api.deps import get_runtime
from router.runtime import Runtime

routes = APIRouter(tags=["health"])


@routes.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@routes.get("/readyz")
async def readyz(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JSONResponse:
    """The store answers and the pool is loaded; 503 otherwise."""
    store_ok = await runtime.database.ping()
    body: dict[str, Any] = {
        "status": "ready" if store_ok else "unavailable",
        "store": "ok" if store_ok else "unreachable",
        "arms": len(runtime.pool.arms),
    }
    if runtime.writer is not None and runtime.writer.spooled:
        body["spooled_journals"] = runtime.writer.spooled
    return JSONResponse(body, status_code=200 if store_ok else 503)
