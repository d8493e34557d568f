"""What the logged traffic of a time window adds up to: requests, spend, latency, the arms
each stage drew with their rewards, and what became of a stage's decisions.

Read-only aggregates for operators (``signalroute stats``). The window is [``since``,
``until``) on the request's arrival time; decisions and rewards count with their request.
``tenant`` (optional) keeps one tenant's requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql

from store.rewards import MEAN_COUNTED_REWARD
from store.translation import translated


@dataclass(frozen=True, slots=True)
class TrafficTotals:
    """Requests of the window by status, what the completed ones cost, and their latency."""

    requests: int
    completed: int
    failed: int
    in_progress: int
    cost_usd: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True, slots=True)
class StageArm:
    """How often a stage drew an arm (or action) and the mean reward of those decisions
    (each decision counts once, with the mean of its rewards; ``rewarded`` says how many
    had one)."""

    stage: str
    arm: str
    decisions: int
    rewarded: int
    mean_reward: float | None


@dataclass(frozen=True, slots=True)
class AnsweringModel:
    """The model that gave completed requests their answer, and what they cost."""

    model: str
    answers: int
    cost_usd: float
    latency_p50_ms: float | None


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """How many decisions of a stage ended with ``outcome`` (None: not recorded)."""

    outcome: str | None
    decisions: int


def _window(
    since: datetime, until: datetime | None, tenant: str | None, alias: str
) -> tuple[sql.Composable, list[Any]]:
    table = sql.Identifier(alias)
    conditions: list[sql.Composable] = [sql.SQL("{}.created_at >= %s").format(table)]
    values: list[Any] = [since]
    if until is not None:
        conditions.append(sql.SQL("{}.created_at < %s").format(table))
        values.append(until)
    if tenant is not None:
        conditions.append(sql.SQL("{}.tenant = %s").format(table))
        values.append(tenant)
    return sql.SQL(" AND ").join(conditions), values


async def traffic_totals(
    conn: AsyncConnection[Any],
    *,
    since: datetime,
    until: datetime | None = None,
    tenant: str | None = None,
) -> TrafficTotals:
    """The window's requests by status, the spend of the completed ones, their latency."""
    where, values = _window(since, until, tenant, "r")
    query = sql.SQL(
        "SELECT count(*), "
        "count(*) FILTER (WHERE r.status = 'completed'), "
        "count(*) FILTER (WHERE r.status = 'failed'), "
        "count(*) FILTER (WHERE r.status = 'accepted'), "
        "coalesce(sum(r.cost_usd) FILTER (WHERE r.status = 'completed'), 0), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) "
        "FILTER (WHERE r.status = 'completed'), "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) "
        "FILTER (WHERE r.status = 'completed') "
        "FROM requests AS r WHERE {}"
    ).format(where)
    with translated("cannot sum the traffic"):
        cursor = await conn.execute(query, values)
        row = await cursor.fetchone()
    assert row is not None
    return TrafficTotals(
        requests=int(row[0]),
        completed=int(row[1]),
        failed=int(row[2]),
        in_progress=int(row[3]),
        cost_usd=float(row[4]),
        latency_p50_ms=None if row[5] is None else float(row[5]),
        latency_p95_ms=None if row[6] is None else float(row[6]),
    )


async def stage_arms(
    conn: AsyncConnection[Any],
    *,
    since: datetime,
    until: datetime | None = None,
    tenant: str | None = None,
) -> list[StageArm]:
    """Per stage and arm drawn: decisions and their mean counted reward; by stage, then most
    drawn."""
    where, values = _window(since, until, tenant, "r")
    query = sql.SQL(
        "SELECT d.stage, d.chosen_arm, count(*), count(w.mean), avg(w.mean) "
        "FROM decisions AS d JOIN requests AS r ON r.id = d.request_id "
        "LEFT JOIN LATERAL (SELECT {mean} AS mean) AS w ON TRUE "
        "WHERE {where} GROUP BY d.stage, d.chosen_arm "
        "ORDER BY d.stage, count(*) DESC, d.chosen_arm"
    ).format(where=where, mean=MEAN_COUNTED_REWARD)
    with translated("cannot count the arms drawn"):
        cursor = await conn.execute(query, values)
        rows = await cursor.fetchall()
    return [
        StageArm(
            stage=row[0],
            arm=row[1],
            decisions=int(row[2]),
            rewarded=int(row[3]),
            mean_reward=None if row[4] is None else float(row[4]),
        )
        for row in rows
    ]


async def answering_models(
    conn: AsyncConnection[Any],
    *,
    since: datetime,
    until: datetime | None = None,
    tenant: str | None = None,
) -> list[AnsweringModel]:
    """Per model that answered completed requests: how many, their cost and latency."""
    where, values = _window(since, until, tenant, "r")
    query = sql.SQL(
        "SELECT r.model, count(*), coalesce(sum(r.cost_usd), 0), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) "
        "FROM requests AS r WHERE r.status = 'completed' AND {} "
        "GROUP BY r.model ORDER BY count(*) DESC, r.model"
    ).format(where)
    with translated("cannot count the answering models"):
        cursor = await conn.execute(query, values)
        rows = await cursor.fetchall()
    return [
        AnsweringModel(
            model=str(row[0]),
            answers=int(row[1]),
            cost_usd=float(row[2]),
            latency_p50_ms=None if row[3] is None else float(row[3]),
        )
        for row in rows
    ]


async def stage_outcomes(
    conn: AsyncConnection[Any],
    stage: str,
    *,
    since: datetime,
    until: datetime | None = None,
    tenant: str | None = None,
) -> list[OutcomeCount]:
    """What became of ``stage``'s decisions in the window, most frequent first."""
    where, values = _window(since, until, tenant, "r")
    query = sql.SQL(
        "SELECT d.outcome, count(*) FROM decisions AS d "
        "JOIN requests AS r ON r.id = d.request_id WHERE d.stage = %s AND {} "
        "GROUP BY d.outcome ORDER BY count(*) DESC, d.outcome"
    ).format(where)
    with translated(f"cannot count the outcomes of stage {stage!r}"):
        cursor = await conn.execute(query, [stage, *values])
        rows = await cursor.fetchall()
    return [OutcomeCount(outcome=row[0], decisions=int(row[1])) for row in rows]
