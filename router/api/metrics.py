"""``GET /metrics``: the Prometheus exposition of this service's metrics.

Its labels name arms and tenants (with their spend), never request content. Without
``SIGNALROUTE_METRICS_TOKEN`` it is open, like ``/healthz``: serve it on a network only the
scraper reaches. With it, the scraper sends ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import SecretStr

from features.errors import AuthenticationError
from router.auth.caller import bearer_token
from router.metrics import CONTENT_TYPE, Metrics

routes = APIRouter(tags=["observability"])


@routes.get("/metrics", response_class=Response)
async def metrics(request: Request, authorization: str | None = Header(default=None)) -> Response:
    check_scraper(request.app.state.metrics_token, authorization)
    registry = request.app.state.metrics
    assert isinstance(registry, Metrics)
    return Response(registry.exposition(), media_type=CONTENT_TYPE)


def check_scraper(token: SecretStr | None, authorization: str | None) -> None:
    """Raises AuthenticationError (401) when a metrics ``token`` is set and not presented."""
    if token is None:
        return
    refused = AuthenticationError(
        "GET /metrics needs 'Authorization: Bearer <SIGNALROUTE_METRICS_TOKEN>'"
    )
    try:
        presented = bearer_token(authorization)
    except AuthenticationError:  # its message is about API keys
        raise refused from None
    if not hmac.compare_digest(presented, token.get_secret_value()):
        raise refused
