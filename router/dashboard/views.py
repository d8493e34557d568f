"""The dashboard's JSON: one function per section of the page, each limited to what its
viewer may see (``Viewer.scope``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from router.api.policies import describe_policies
from router.dashboard.access import Viewer
from router.dashboard.reports import newest_report
from router.lifecycle.stages import STAGES
from router.runtime import Runtime
from store import activity as activity_log

TRAFFIC_BUCKETS = 60
"""About how many time buckets a traffic view splits its range into."""


def overview(runtime: Runtime, viewer: Viewer) -> dict[str, Any]:
    """Who is looking, the pool's arms with their prices and capabilities, the stages."""
    return {
        "scope": viewer.scope,
        "operator": viewer.operator,
        "auth": runtime.settings.auth,
        "role": runtime.settings.role,
        "stages": list(STAGES),
        "arms": [
            {
                "arm": arm.name,
                "model": arm.model,
                "input_usd_per_mtok": arm.input_usd_per_mtok,
                "output_usd_per_mtok": arm.output_usd_per_mtok,
                "capabilities": sorted(arm.capabilities),
                "serves_only": sorted(arm.serves_only),
            }
            for arm in runtime.pool.arms
        ],
        "judge": runtime.pool.judge.name if runtime.pool.judge is not None else None,
        "now": datetime.now(UTC).isoformat(),
    }


def bucket_seconds(minutes: int) -> int:
    """The bucket width that splits ``minutes`` into about ``TRAFFIC_BUCKETS`` buckets
    (10 s at least)."""
    return max(10, round(minutes * 60 / TRAFFIC_BUCKETS))


async def traffic(runtime: Runtime, viewer: Viewer, *, minutes: int) -> dict[str, Any]:
    """Decisions of the last ``minutes`` per time bucket, stage and chosen arm: how many,
    their mean reward, what they cost and their mean latency."""
    bucket_s = bucket_seconds(minutes)
    now = datetime.now(UTC)
    since = now - timedelta(minutes=minutes)
    async with runtime.database.connection() as conn:
        rows = await activity_log.traffic(conn, since=since, bucket_s=bucket_s, tenant=viewer.scope)
    return {
        "since": since.isoformat(),
        "until": now.isoformat(),
        "bucket_s": bucket_s,
        "rows": [
            {
                **asdict(row),
                "bucket": row.bucket.isoformat(),
                "reward": _round(row.reward),
                "latency_ms": _round(row.latency_ms, 1),
            }
            for row in rows
        ],
    }


async def policies(runtime: Runtime, viewer: Viewer, *, window: int) -> dict[str, Any]:
    """Each stage's policy, as ``GET /policies`` shows it to this viewer."""
    return {
        "window": window,
        "policies": await describe_policies(runtime, window=window, tenant=viewer.scope),
    }


async def latest_requests(runtime: Runtime, viewer: Viewer, *, limit: int) -> dict[str, Any]:
    """The latest requests, newest first, with the start of their last message."""
    async with runtime.database.connection() as conn:
        rows = await activity_log.latest_requests(conn, limit=limit, tenant=viewer.scope)
    return {
        "requests": [
            {
                **asdict(row),
                "id": str(row.id),
                "created_at": row.created_at.isoformat(),
                "reward": _round(row.reward),
                "latency_ms": _round(row.latency_ms, 1),
            }
            for row in rows
        ]
    }


async def spend(runtime: Runtime, viewer: Viewer, *, limit: int = 20) -> dict[str, Any]:
    """The biggest spenders (tenants, sessions) against the configured budgets."""
    settings = runtime.settings
    async with runtime.database.connection() as conn:
        tenants = await activity_log.spend(conn, sessions=False, limit=limit, tenant=viewer.scope)
        sessions = await activity_log.spend(conn, sessions=True, limit=limit, tenant=viewer.scope)

    def used(cost_usd: float, budget: float | None) -> float | None:
        return None if budget is None else round(cost_usd / budget, 4)

    return {
        "tenant_budget_usd": settings.tenant_budget_usd,
        "session_budget_usd": settings.session_budget_usd,
        "tenants": [
            {
                "tenant": s.tenant,
                "cost_usd": s.cost_usd,
                "requests": s.requests,
                "budget_used": used(s.cost_usd, settings.tenant_budget_usd),
            }
            for s in tenants
        ],
        "sessions": [
            {
                "tenant": s.tenant,
                "session": s.session_id,
                "cost_usd": s.cost_usd,
                "requests": s.requests,
                "budget_used": used(s.cost_usd, settings.session_budget_usd),
            }
            for s in sessions
        ],
    }


def health(runtime: Runtime) -> dict[str, Any]:
    """Each arm's provider as this process sees it: circuit, error rate, latency."""
    arms = []
    for name in runtime.pool.names:
        snapshot = runtime.health.snapshot(name)
        arms.append(
            {
                "arm": name,
                "circuit": snapshot.circuit.value,
                "available": snapshot.available,
                "error_rate": round(snapshot.error_rate, 4),
                "calls_in_window": snapshot.calls_in_window,
                "latency_ewma_ms": _round(snapshot.latency_ewma_ms, 1),
                "latency_p95_ms": _round(snapshot.latency_p95_ms, 1),
                "rate_limit_headroom": snapshot.rate_limit_headroom,
                "in_flight": snapshot.in_flight,
            }
        )
    return {"arms": arms}


def offline_report(runtime: Runtime, viewer: Viewer) -> dict[str, Any]:
    """The newest offline-evaluation report (operators only: it covers every tenant)."""
    folder = runtime.settings.dashboard_reports
    if not viewer.operator:
        return {"available": False, "reason": "the offline-evaluation report is for operators"}
    found = newest_report(folder)
    if found is None:
        return {
            "available": False,
            "reason": f"no replay.json under {folder} yet: run `signalroute evaluate --out "
            f"{folder}` to evaluate the logged traffic",
        }
    return {"available": True, **found}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
