"""``signalroute explain REQUEST_ID``: one logged request's trace, as tables in the terminal.

Read from the store the service writes: the request, each decision (stage, arm drawn, the
probability it was drawn with, outcome, reward, policy version), the PMF each decision was
drawn from, the arms masked and why, the decisions' details (validators, judge, detector),
the rewards recorded and, with ``--signals``, every signal a decision saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from learner.context import Context
from router import trace_records
from router.api.openai_format import COMPLETION_ID_PREFIX
from router.commands.tables import cell, render_table
from router.contexts import SHARED_FAMILIES
from router.settings import load_settings
from store import decisions as decision_log
from store import requests as request_log
from store import rewards as reward_log
from store.database import Database
from store.records import DecisionRecord, RequestRecord, RewardRecord


def add_explain_command(commands: Any) -> None:
    """Register ``explain`` on the CLI's sub-command parsers."""
    explain = commands.add_parser(
        "explain",
        help="show one logged request's trace: decisions, PMFs, masked arms, rewards",
        description=__doc__,
    )
    explain.add_argument(
        "request_id", help="the request's id (from the trace, the logs, or a chatcmpl- id)"
    )
    explain.add_argument("--signals", action="store_true", help="also list every signal")
    explain.add_argument("--json", action="store_true", help="print the trace as JSON")
    explain.set_defaults(handler=run)


@dataclass(frozen=True)
class StoredRequest:
    """A logged request with its decisions and their rewards, as the store keeps them."""

    request: RequestRecord
    decisions: tuple[DecisionRecord, ...]
    rewards: tuple[RewardRecord, ...]

    def trace(self) -> dict[str, Any]:
        """The request's trace in the shape a routed response carries it (``decisions``
        with stage, arm, probability, pmf, masked, outcome, reward, signals), so that
        ``router.trace_records`` reads it as it reads a live one."""
        by_decision: dict[str, list[float]] = {}
        for reward in self.rewards:
            by_decision.setdefault(str(reward.decision_id), []).append(reward.value)
        return {
            "request_id": str(self.request.id),
            "decisions": [
                {
                    "decision_id": str(d.id),
                    "stage": d.stage,
                    "arm": d.chosen_arm,
                    "probability": d.probability,
                    "pmf": dict(d.pmf),
                    "policy_version": d.policy_version,
                    "outcome": d.outcome or "(not recorded)",
                    "reward": _mean(by_decision.get(str(d.id), ())),
                    "masked": dict(d.masked or {}),
                    "details": dict(d.details or {}),
                    "signals": signals(d.context, d.chosen_arm),
                }
                for d in self.decisions
            ],
        }


def signals(context_json: Mapping[str, Any], arm: str) -> dict[str, Any]:
    """A logged context's signals by family, the drawn arm's own features under ``arm``."""
    context = Context.from_json(context_json)
    found: dict[str, Any] = {
        SHARED_FAMILIES.get(namespace, namespace): dict(values)
        for namespace, values in context.shared.items()
    }
    if arm in context.arm_names:
        chosen = context.arms[context.index(arm)]
        found["arm"] = {ns: dict(values) for ns, values in chosen.namespaces.items()}
    return found


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


async def read_request(database: Database, request_id: str) -> StoredRequest:
    """The request ``request_id`` (a ``chatcmpl-`` id too) with its decisions and rewards.
    Raises NotFoundError when the store has no such request."""
    request_id = request_id.removeprefix(COMPLETION_ID_PREFIX)
    async with database.connection() as conn:
        request = await request_log.get_request(conn, request_id)
        decisions = await decision_log.list_decisions_for_request(conn, request_id)
        rewards = await reward_log.list_rewards_for_request(conn, request_id)
    return StoredRequest(request, tuple(decisions), tuple(rewards))


def render(stored: StoredRequest, *, with_signals: bool = False) -> str:
    """The request and its trace as text: a summary, then one table per part."""
    request = stored.request
    trace = stored.trace()
    summary = [
        f"request {request.id}: {request.status.value}, tenant {request.tenant}"
        + (f", user {request.user_id}" if request.user_id else ""),
        f"created {request.created_at:%Y-%m-%d %H:%M:%S %Z}; answered by {cell(request.model)}; "
        f"cost ${cell(request.cost_usd)}; latency {cell(request.latency_ms)} ms",
        f"prompt: {_cut(_last_user_text(request.messages), 200)}",
    ]
    if request.output is not None:
        summary.append(f"answer: {_cut(request.output, 200)}")
    if request.error is not None:
        summary.append(f"error: {request.error}")
    step_of = {str(d.id): step for step, d in enumerate(stored.decisions, start=1)}
    reward_rows = [
        {
            "step": step_of.get(str(r.decision_id)),
            "value": r.value,
            "source": r.source,
            "learned_as_update": r.policy_update,
            "recorded": f"{r.created_at:%H:%M:%S}",
        }
        for r in stored.rewards
    ]
    detail_rows = [
        {"step": step, "stage": d["stage"], "detail": key, "value": _compact(value)}
        for step, d in enumerate(trace["decisions"], start=1)
        for key, value in d["details"].items()
    ]
    tables = [
        render_table(
            trace_records.decision_rows(trace),
            title="decisions (probability: the propensity the arm was drawn with)",
        ),
        render_table(trace_records.pmf_rows(trace), title="PMF of each decision"),
        render_table(trace_records.masked_rows(trace), title="masked arms", max_width=90),
        render_table(detail_rows, title="details", max_width=90),
        render_table(reward_rows, title="rewards"),
    ]
    if with_signals:
        tables.append(render_table(trace_records.signal_rows(trace), title="signals"))
    return "\n".join(summary) + "\n\n" + "\n\n".join(tables)


def _last_user_text(messages: Iterable[Mapping[str, Any]]) -> str:
    text = ""
    for message in messages:
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
    return text


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def run(args: argparse.Namespace) -> int:
    from router.explain import open_store  # the runtime's imports are heavy: load on use

    async def read() -> StoredRequest:
        async with open_store(load_settings()) as database:
            return await read_request(database, args.request_id)

    stored = asyncio.run(read())
    if args.json:
        print(json.dumps(stored.trace(), indent=2, default=str))
    else:
        print(render(stored, with_signals=args.signals))
    return 0
