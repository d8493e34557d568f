"""FastAPI dependencies: how a handler reaches the runtime the lifespan opened."""

from __future__ import annotations

from fastapi import Request

from features.errors import StoreUnavailableError
from router.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The running service's resources (503 while it is still starting or already stopped)."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise StoreUnavailableError("the service is not ready yet")
    return runtime
