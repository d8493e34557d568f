"""Recent activity, for the dashboard: decisions per time bucket, stage and arm; the latest
requests; spend per tenant and session.

Every function takes an optional ``tenant``: given, only that tenant's requests count. Every
function runs in the caller's transaction and reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from store.rewards import MEAN_COUNTED_REWARD
from store.translation import translated

MAX_BUCKETS = 10_000
"""A traffic query never returns more time buckets than this (per stage and arm)."""


@dataclass(frozen=True, slots=True)
class TrafficRow:
    """The decisions of one ``stage`` that chose ``arm`` in the bucket starting at ``bucket``:
    how many, how many have a reward and their mean reward, what their calls cost together,
    their mean latency (None when no call was recorded: an ``accept``)."""

    bucket: datetime
    stage: str
    arm: str
    decisions: int
    rewarded: int
    reward: float | None
    cost_usd: float | None
    latency_ms: float | None


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """One line of the latest requests: ``preview`` is the start of the last message's
    text, ``reward`` the mean of the rewards of its decisions."""

    id: UUID
    created_at: datetime
    tenant: str
    status: str
    model: str | None
    cost_usd: float | None
    latency_ms: float | None
    preview: str | None
    decisions: int
    reward: float | None


@dataclass(frozen=True, slots=True)
class Spend:
    """What a tenant (or one of its sessions, when ``session_id`` is set) spent over all
    time, and over how many requests."""

    tenant: str
    session_id: str | None
    cost_usd: float
    requests: int


_TRAFFIC = sql.SQL(
    "SELECT to_timestamp(floor(extract(epoch FROM d.created_at) / %(bucket)s) * %(bucket)s) "
    "AS bucket, d.stage, d.chosen_arm AS arm, count(*) AS decisions, "
    "count(w.mean) AS rewarded, avg(w.mean) AS reward, sum(d.cost_usd) AS cost_usd, "
    "avg(d.latency_ms) AS latency_ms "
    "FROM decisions AS d JOIN requests AS r ON r.id = d.request_id "
    "LEFT JOIN LATERAL (SELECT {mean} AS mean) AS w ON TRUE "
    "WHERE d.created_at >= %(since)s AND (%(tenant)s::text IS NULL OR r.tenant = %(tenant)s) "
    "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
).format(mean=MEAN_COUNTED_REWARD)


async def traffic(
    conn: AsyncConnection[Any],
    *,
    since: datetime,
    bucket_s: int,
    tenant: str | None = None,
) -> list[TrafficRow]:
    """Decisions made since ``since``, per ``bucket_s``-second bucket (aligned on the epoch),
    stage and chosen arm, oldest bucket first. Raises ValueError for a bucket under a second
    or a range of more than ``MAX_BUCKETS`` buckets."""
    if bucket_s < 1:
        raise ValueError(f"bucket_s must be >= 1, got {bucket_s}")
    span_s = (datetime.now(since.tzinfo) - since).total_seconds()
    if span_s / bucket_s > MAX_BUCKETS:
        raise ValueError(f"at most {MAX_BUCKETS} buckets: widen bucket_s or shorten the range")
    values = {"bucket": bucket_s, "since": since, "tenant": tenant}
    with translated("cannot summarise the traffic"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_TRAFFIC, values)
            rows = await cursor.fetchall()
    return [
        TrafficRow(
            bucket=row["bucket"],
            stage=row["stage"],
            arm=row["arm"],
            decisions=int(row["decisions"]),
            rewarded=int(row["rewarded"]),
            reward=_float(row["reward"]),
            cost_usd=_float(row["cost_usd"]),
            latency_ms=_float(row["latency_ms"]),
        )
        for row in rows
    ]


_LATEST = (
    "SELECT r.id, r.created_at, r.tenant, r.status, r.model, r.cost_usd, r.latency_ms, "
    "left(coalesce(r.messages -> -1 ->> 'content', ''), %(preview)s) AS preview, "
    "(SELECT count(*) FROM decisions AS d WHERE d.request_id = r.id) AS decisions, "
    "(SELECT avg(w.value) FROM rewards AS w JOIN decisions AS d ON d.id = w.decision_id "
    "WHERE d.request_id = r.id AND w.counted) AS reward "
    "FROM requests AS r WHERE (%(tenant)s::text IS NULL OR r.tenant = %(tenant)s) "
    "ORDER BY r.created_at DESC, r.id DESC LIMIT %(limit)s"
)


async def latest_requests(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    tenant: str | None = None,
    preview_chars: int = 120,
) -> list[RequestSummary]:
    """The ``limit`` latest requests, newest first."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    values = {"limit": limit, "tenant": tenant, "preview": preview_chars}
    with translated("cannot list the latest requests"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_LATEST, values)
            rows = await cursor.fetchall()
    return [
        RequestSummary(
            **{**row, "decisions": int(row["decisions"]), "reward": _float(row["reward"])}
        )
        for row in rows
    ]


_TENANT_SPEND = (
    "SELECT tenant, NULL::text AS session_id, coalesce(sum(cost_usd), 0) AS cost_usd, "
    "count(*) AS requests FROM requests "
    "WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s) "
    "GROUP BY tenant ORDER BY cost_usd DESC, tenant LIMIT %(limit)s"
)
_SESSION_SPEND = (
    "SELECT tenant, session_id, coalesce(sum(cost_usd), 0) AS cost_usd, count(*) AS requests "
    "FROM requests WHERE session_id IS NOT NULL "
    "AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s) "
    "GROUP BY tenant, session_id ORDER BY cost_usd DESC, tenant, session_id LIMIT %(limit)s"
)


async def spend(
    conn: AsyncConnection[Any], *, sessions: bool, limit: int, tenant: str | None = None
) -> list[Spend]:
    """The ``limit`` biggest spenders, biggest first: tenants, or (``sessions``) sessions.
    Spend is the sum of the requests' ``cost_usd``, as budgets count it."""
    values = {"limit": limit, "tenant": tenant}
    with translated("cannot sum the spend"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_SESSION_SPEND if sessions else _TENANT_SPEND, values)
            rows = await cursor.fetchall()
    return [
        Spend(
            tenant=row["tenant"],
            session_id=row["session_id"],
            cost_usd=float(row["cost_usd"]),
            requests=int(row["requests"]),
        )
        for row in rows
    ]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
