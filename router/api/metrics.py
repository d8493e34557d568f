"""``GET /metrics``: the Prometheus exposition of this service's metrics.

Unauthenticated, like ``/healthz``: serve it on a network only the scraper reaches (its
labels name arms and tenants, never request content).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from router.metrics import CONTENT_TYPE, Metrics

routes = APIRouter(tags=["observability"])


@routes.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    assert isinstance(registry, Metrics)
    return Response(registry.exposition(), media_type=CONTENT_TYPE)
