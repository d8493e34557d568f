"""FastAPI dependencies: how a handler reaches the runtime the lifespan opened, and its caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from features.errors import StoreUnavailableError
from router.auth.caller import Caller, Scope, authenticate
from router.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """The running service's resources (503 while it is still starting or already stopped).

    A coroutine, though it never awaits: FastAPI runs a plain function dependency in a
    worker thread, a thread hand-off on every request."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise StoreUnavailableError("the service is not ready yet")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_caller(
    runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """Who sent the request: 401 without a valid key when ``SIGNALROUTE_AUTH=keys``."""
    return await authenticate(runtime.settings.auth, runtime.database, authorization)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require(scope: Scope) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency giving the caller once its key is shown to have ``scope`` (403 naming
    the scope otherwise). Attach it to a route as a parameter, ``caller: ReadCaller``, or
    as ``dependencies=[Depends(require("read"))]``."""

    async def scoped(caller: CallerDep) -> Caller:
        caller.require(scope)
        return caller

    scoped.__name__ = f"require_{scope}_scope"
    return scoped


RouteCaller = Annotated[Caller, Depends(require("route"))]
FeedbackCaller = Annotated[Caller, Depends(require("feedback"))]
ReadCaller = Annotated[Caller, Depends(require("read"))]
AdminCaller = Annotated[Caller, Depends(require("admin"))]
