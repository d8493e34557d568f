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


def require(scope: Scope) -> Callable[..., Awaitable[Caller]]:
    """A dependency giving the caller once its key is shown to have ``scope``: 401 without a
    valid key when ``SIGNALROUTE_AUTH=keys``, 403 naming the scope when the key lacks it.
    Attach it to a route as a parameter, ``caller: ReadCaller``, or as
    ``dependencies=[Depends(require("read"))]``.

    One dependency, not a chain of them (runtime, then key, then scope): FastAPI resolves
    each on every request, and on the routing path each level cost as much as the check."""

    async def scoped(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Caller:
        runtime = await get_runtime(request)
        caller = await authenticate(runtime.settings.auth, runtime.database, authorization)
        caller.require(scope)
        return caller

    scoped.__name__ = f"require_{scope}_scope"
    return scoped


RouteCaller = Annotated[Caller, Depends(require("route"))]
FeedbackCaller = Annotated[Caller, Depends(require("feedback"))]
ReadCaller = Annotated[Caller, Depends(require("read"))]
AdminCaller = Annotated[Caller, Depends(require("admin"))]
