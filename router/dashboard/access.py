"""Who looks at the dashboard, and what they may see.

The dashboard's callers are the API's callers: with ``SIGNALROUTE_AUTH=keys`` an API key
sees its own tenant's traffic (``Caller.scope``). The operator sends the metrics token
(``SIGNALROUTE_METRICS_TOKEN``, the token that already guards the all-tenant ``/metrics``)
and sees every tenant's: it is answered as the unscoped caller of local mode.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from features.errors import AuthenticationError
from router.api.deps import RuntimeDep
from router.auth.caller import Caller, authenticate, bearer_token


@dataclass(frozen=True)
class Viewer:
    """A dashboard reader: ``caller.scope`` is the one tenant it may see (None: all);
    ``operator`` says it may see service-wide state (the offline-evaluation report)."""

    caller: Caller
    operator: bool

    @property
    def scope(self) -> str | None:
        return self.caller.scope


async def get_viewer(
    runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Viewer:
    """The dashboard reader of a request: 401 in keys mode without the operator's token or
    a valid API key."""
    settings = runtime.settings
    if settings.auth == "none":
        return Viewer(Caller(), operator=True)
    token = settings.metrics_token
    if token is not None and authorization is not None:
        presented = _presented(authorization)
        if presented is not None and hmac.compare_digest(
            presented.encode(), token.get_secret_value().encode()
        ):
            return Viewer(Caller(), operator=True)
    caller = await authenticate(settings.auth, runtime.database, authorization)
    return Viewer(caller, operator=False)


def _presented(authorization: str) -> str | None:
    try:
        return bearer_token(authorization)
    except AuthenticationError:  # a malformed header: authenticate() explains it
        return None


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
