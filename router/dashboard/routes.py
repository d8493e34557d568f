"""``GET /dashboard``: the page and its assets, and the read-only JSON it is drawn from.

The page and its assets hold no data and need no credentials (a browser cannot send a
header with a page load); every ``/dashboard/api/...`` endpoint checks its caller
(``router.dashboard.access``). The assets are read from the package once and served with
their content type; only the files named in ``ASSETS`` are served.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from features.errors import NotFoundError
from router.api.deps import RuntimeDep
from router.api.route import logged_request
from router.dashboard import views
from router.dashboard.access import ViewerDep

routes = APIRouter(tags=["dashboard"])

ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "vendor/chart.js/chart.umd.js": "text/javascript; charset=utf-8",
    "vendor/chart.js/LICENSE.md": "text/markdown; charset=utf-8",
}
"""The static files the page loads, with their content types."""

PAGE_HEADERS = {
    # Everything the page needs is served from here: nothing else may load or run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@cache
def _static(name: str) -> bytes:
    return resources.files("router.dashboard").joinpath("static", name).read_bytes()


@routes.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The dashboard page (its data comes from ``/dashboard/api/...``)."""
    return HTMLResponse(_static("index.html"), headers=PAGE_HEADERS)


@routes.get("/dashboard/static/{name:path}", include_in_schema=False)
async def asset(name: str) -> Response:
    """One of the page's ``ASSETS``; 404 for any other name."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"no dashboard asset {name!r}")
    return Response(_static(name), media_type=media_type, headers=PAGE_HEADERS)


@routes.get("/dashboard/api/access")
async def access(runtime: RuntimeDep) -> dict[str, str]:
    """Whether the other endpoints need a token (``keys``) or not (``none``): the page asks
    for one before it calls them. Open, like the page: it tells nothing else."""
    return {"auth": runtime.settings.auth}


@routes.get("/dashboard/api/overview")
async def overview(runtime: RuntimeDep, viewer: ViewerDep) -> dict[str, Any]:
    """Who is looking (``scope``: the one tenant it sees, or null for all), the pool's
    arms and the stages."""
    return views.overview(runtime, viewer)


@routes.get("/dashboard/api/traffic")
async def traffic(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    minutes: Annotated[int, Query(ge=1, le=60 * 24 * 31)] = 60,
) -> dict[str, Any]:
    """Decisions of the last ``minutes`` per time bucket, stage and arm."""
    return await views.traffic(runtime, viewer, minutes=minutes)


@routes.get("/dashboard/api/policies")
async def policies(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    window: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> dict[str, Any]:
    """Each stage's policy and per-arm estimates over its last ``window`` decisions."""
    return await views.policies(runtime, viewer, window=window)


@routes.get("/dashboard/api/requests")
async def requests(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The latest ``limit`` requests."""
    return await views.latest_requests(runtime, viewer, limit=limit)


@routes.get("/dashboard/api/requests/{request_id}")
async def request_trace(request_id: str, runtime: RuntimeDep, viewer: ViewerDep) -> dict[str, Any]:
    """One request's full trace, as ``GET /requests/{id}`` gives it."""
    return await logged_request(runtime, viewer.caller, request_id)


@routes.get("/dashboard/api/spend")
async def spend(runtime: RuntimeDep, viewer: ViewerDep) -> dict[str, Any]:
    """Spend per tenant and session against the budgets."""
    return await views.spend(runtime, viewer)


@routes.get("/dashboard/api/health")
async def health(runtime: RuntimeDep, viewer: ViewerDep) -> dict[str, Any]:
    """Each arm's provider health: circuit, error rate, latency (p95, EWMA)."""
    return views.health(runtime)


@routes.get("/dashboard/api/offline")
async def offline(runtime: RuntimeDep, viewer: ViewerDep) -> dict[str, Any]:
    """The newest offline-evaluation report, for operators."""
    return views.offline_report(runtime, viewer)
