"""``signalroute stats``: what the logged traffic of a recent window adds up to.

Read from the store the service writes (``SIGNALROUTE_DATABASE_URL``, or the embedded server
under ``SIGNALROUTE_DATA_DIR``, shared with a running service): requests by status, spend and
latency, the models that answered, the arms each stage drew with their mean reward, and how
often answers were escalated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from router.commands.tables import cell, render_table
from router.lifecycle.stages import ACCEPT, ESCALATE_PREFIX, ESCALATION
from router.settings import load_settings
from store import traffic
from store.database import Database

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d``... as a time span (argparse type)."""
    match = _DURATION.match(text)
    if match is None or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive duration such as 30m, 24h or 7d, got {text!r}"
        )
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def add_stats_command(commands: Any) -> None:
    """Register ``stats`` on the CLI's sub-command parsers."""
    stats = commands.add_parser(
        "stats",
        help="traffic, arm shares, cost, reward and escalations over a recent window",
        description=__doc__,
    )
    stats.add_argument(
        "--window",
        type=duration,
        default="24h",
        help="how far back to look: a number and s, m, h, d or w",
    )
    stats.add_argument("--tenant", help="only this tenant's requests (unset: every tenant)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    stats.set_defaults(handler=run)


@dataclass(frozen=True)
class TrafficStats:
    """Everything ``stats`` reports about one window."""

    since: datetime
    tenant: str | None
    totals: traffic.TrafficTotals
    models: tuple[traffic.AnsweringModel, ...]
    arms: tuple[traffic.StageArm, ...]
    escalation_outcomes: tuple[traffic.OutcomeCount, ...]

    def escalations(self) -> dict[str, Any]:
        """How the escalation stage decided: answers judged, kept, escalated (and to which
        arms), and the share escalated."""
        post = [a for a in self.arms if a.stage == ESCALATION]
        judged = sum(a.decisions for a in post)
        escalated = {
            a.arm.removeprefix(ESCALATE_PREFIX): a.decisions
            for a in post
            if a.arm.startswith(ESCALATE_PREFIX)
        }
        return {
            "decisions": judged,
            "accepted": sum(a.decisions for a in post if a.arm == ACCEPT),
            "escalated": sum(escalated.values()),
            "escalated_share": sum(escalated.values()) / judged if judged else None,
            "escalated_to": escalated,
            "outcomes": {
                o.outcome or "(not recorded)": o.decisions for o in self.escalation_outcomes
            },
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "tenant": self.tenant,
            "totals": asdict(self.totals),
            "models": [asdict(m) for m in self.models],
            "arms": [
                {**asdict(a), "share": share}
                for a, share in zip(self.arms, self.shares(), strict=True)
            ],
            "escalations": self.escalations(),
        }

    def shares(self) -> list[float]:
        """Each stage-arm row's share of its stage's decisions."""
        per_stage: dict[str, int] = {}
        for arm in self.arms:
            per_stage[arm.stage] = per_stage.get(arm.stage, 0) + arm.decisions
        return [a.decisions / per_stage[a.stage] for a in self.arms]


async def collect(
    database: Database, *, since: datetime, tenant: str | None = None
) -> TrafficStats:
    """Read the window's aggregates from the store."""
    async with database.connection() as conn:
        totals = await traffic.traffic_totals(conn, since=since, tenant=tenant)
        models = await traffic.answering_models(conn, since=since, tenant=tenant)
        arms = await traffic.stage_arms(conn, since=since, tenant=tenant)
        outcomes = await traffic.stage_outcomes(conn, ESCALATION, since=since, tenant=tenant)
    return TrafficStats(
        since=since,
        tenant=tenant,
        totals=totals,
        models=tuple(models),
        arms=tuple(arms),
        escalation_outcomes=tuple(outcomes),
    )


def render(stats: TrafficStats) -> str:
    """The report as text: a summary, then tables."""
    t = stats.totals
    who = f"tenant {stats.tenant}" if stats.tenant else "all tenants"
    lines = [
        f"since {stats.since:%Y-%m-%d %H:%M:%S} UTC, {who}",
        f"requests: {t.requests} ({t.completed} completed, {t.failed} failed, "
        f"{t.in_progress} in progress)",
        f"cost: ${t.cost_usd:.6f}"
        + (f" (${t.cost_usd / t.completed:.6f} per completed request)" if t.completed else ""),
        f"latency: p50 {cell(t.latency_p50_ms)} ms, p95 {cell(t.latency_p95_ms)} ms",
    ]
    escalations = stats.escalations()
    if escalations["decisions"]:
        to = ", ".join(f"{arm} {n}" for arm, n in escalations["escalated_to"].items())
        lines.append(
            f"escalations: {escalations['escalated']} of {escalations['decisions']} answers "
            f"checked ({escalations['escalated_share']:.1%})" + (f": to {to}" if to else "")
        )
    models = [
        {
            "model": m.model,
            "answers": m.answers,
            "share": m.answers / t.completed if t.completed else None,
            "cost_usd": m.cost_usd,
            "latency_p50_ms": m.latency_p50_ms,
        }
        for m in stats.models
    ]
    arms = [
        {
            "stage": a.stage,
            "arm": a.arm,
            "decisions": a.decisions,
            "share": share,
            "rewarded": a.rewarded,
            "mean_reward": a.mean_reward,
        }
        for a, share in zip(stats.arms, stats.shares(), strict=True)
    ]
    outcomes = [{"outcome": k, "decisions": v} for k, v in escalations["outcomes"].items()]
    tables = [
        render_table(models, title="answers by model"),
        render_table(arms, title="arms drawn by each stage (share of the stage's decisions)"),
    ]
    if outcomes:
        tables.append(render_table(outcomes, title="escalation stage outcomes"))
    return "\n".join(lines) + "\n\n" + "\n\n".join(tables)


def run(args: argparse.Namespace, *, now: datetime | None = None) -> int:
    from router.explain import open_store  # the runtime's imports are heavy: load on use

    since = (now or datetime.now(UTC)) - args.window

    async def read() -> TrafficStats:
        async with open_store(load_settings()) as database:
            return await collect(database, since=since, tenant=args.tenant)

    stats = asyncio.run(read())
    print(json.dumps(stats.as_json(), indent=2) if args.json else render(stats))
    return 0
