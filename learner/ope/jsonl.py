"""signalroute's own export format: one JSON object per logged decision (JSON Lines).

It keeps everything OPE uses and DSJSON cannot say: the context exactly as logged
(``learner.context.Context.to_json``), the stage, the policy version, the reward's source
and, when known, the outcome the reward was shaped from.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from learner.context import ArmFeatures, Context
from learner.ope.log import LoggedDecision, Outcome

FORMAT_VERSION = 1


def to_record(decision: LoggedDecision) -> dict[str, Any]:
    """The JSON object of one decision."""
    outcome = decision.outcome
    return {
        "version": FORMAT_VERSION,
        "decision_id": decision.decision_id,
        "stage": decision.stage,
        "policy_name": decision.policy_name,
        "policy_version": decision.policy_version,
        "timestamp": decision.timestamp.isoformat() if decision.timestamp else None,
        "context": decision.context.to_json(),
        "chosen_arm": decision.chosen_arm,
        "probability": decision.probability,
        "pmf": dict(decision.pmf),
        "reward": decision.reward,
        "reward_source": decision.reward_source,
        "outcome": None
        if outcome is None
        else {
            "quality": outcome.quality,
            "cost_usd": outcome.cost_usd,
            "latency_ms": outcome.latency_ms,
        },
    }


def from_record(record: Mapping[str, Any]) -> LoggedDecision:
    """The decision of one JSON object; KeyError / ValueError / TypeError when malformed."""
    outcome = record.get("outcome")
    timestamp = record.get("timestamp")
    context = record["context"]
    return LoggedDecision(
        decision_id=str(record["decision_id"]),
        # The parsed JSON is fresh and owned here: wrap it instead of copying it
        # (Context.from_json copies; this is the hot path of reading a large log).
        context=Context(
            shared=context["shared"],
            arms=tuple(
                ArmFeatures(arm=str(a["arm"]), namespaces=a["namespaces"]) for a in context["arms"]
            ),
        ),
        chosen_arm=str(record["chosen_arm"]),
        probability=float(record["probability"]),
        pmf={str(arm): float(p) for arm, p in record["pmf"].items()},
        reward=float(record["reward"]),
        stage=str(record.get("stage", "pre")),
        policy_name=str(record.get("policy_name", "")),
        policy_version=int(record.get("policy_version", 0)),
        timestamp=datetime.fromisoformat(timestamp) if timestamp else None,
        reward_source=str(record.get("reward_source", "")),
        outcome=None
        if outcome is None
        else Outcome(
            quality=float(outcome["quality"]),
            cost_usd=float(outcome["cost_usd"]),
            latency_ms=float(outcome["latency_ms"]),
        ),
    )
