"""VW's decision-service JSON (DSJSON), the format ``vw --dsjson`` reads: one object per
decision, so logs move between signalroute, VW's own tools and other decision services.

Fields written (and read):

* ``_label_cost``: VW's cost of the reward (``learner.vw_policy.vw_cost``: its negation);
* ``_label_probability``: the chosen arm's logged probability;
* ``_label_Action`` / ``_labelIndex``: the chosen action, 1-based / 0-based;
* ``a``: action ids (1-based), the chosen one first, then the rest in context order;
  ``p``: their logging probabilities, aligned with ``a``;
* ``c``: the context: one object per shared namespace, and ``_multi``, one object per
  arm in action order, whose ``_tag`` is the arm's name;
* ``EventId`` (the decision id), ``Timestamp``, ``Version`` ("1");
* ``_signalroute``: stage, policy name and version, reward source, outcome (VW ignores
  top-level keys that start with ``_``).

Features: a number is ``"name": value``; a string feature ``name=value`` is written as
``"name=value": 1``, which VW hashes exactly as the text format's ``name=value`` (a JSON
string value would hash differently), so a model trained on either format predicts the
same. Reading inverts this: a key holding ``=`` with value 1 becomes a string feature.
Reading other producers' files: nested arrays of objects are merged into their namespace,
top-level scalar features go to a namespace named ``default``, underscore keys are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from learner.context import ArmFeatures, Context, FeatureValue, Namespace
from learner.ope.log import LoggedDecision, Outcome
from learner.vw_policy import vw_cost

VERSION = "1"
META_KEY = "_signalroute"
DEFAULT_NAMESPACE = "default"
"""Where features outside any namespace object are put when reading."""


def _features(values: Namespace) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, str):
            out[f"{name}={value}"] = 1
        else:
            out[name] = float(value)
    return out


def _timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def to_dsjson(decision: LoggedDecision) -> dict[str, Any]:
    """The DSJSON object of one decision."""
    context = decision.context
    names = context.arm_names
    chosen = context.index(decision.chosen_arm)
    order = [chosen, *(i for i in range(len(names)) if i != chosen)]
    probabilities = [float(decision.pmf.get(names[i], 0.0)) for i in order]
    probabilities[0] = decision.probability
    shared: dict[str, Any] = {ns: _features(values) for ns, values in context.shared.items()}
    shared["_multi"] = [
        {"_tag": arm.arm, **{ns: _features(v) for ns, v in arm.namespaces.items()}}
        for arm in context.arms
    ]
    outcome = decision.outcome
    record: dict[str, Any] = {
        "_label_cost": vw_cost(decision.reward),
        "_label_probability": decision.probability,
        "_label_Action": chosen + 1,
        "_labelIndex": chosen,
        "Version": VERSION,
        "EventId": decision.decision_id,
        "a": [i + 1 for i in order],
        "c": shared,
        "p": probabilities,
        META_KEY: {
            "stage": decision.stage,
            "policy_name": decision.policy_name,
            "policy_version": decision.policy_version,
            "reward_source": decision.reward_source,
            "outcome": None
            if outcome is None
            else {
                "quality": outcome.quality,
                "cost_usd": outcome.cost_usd,
                "latency_ms": outcome.latency_ms,
            },
        },
    }
    stamp = _timestamp(decision.timestamp)
    if stamp is not None:
        record["Timestamp"] = stamp
    return record


def _value(name: str, value: Any) -> tuple[str, FeatureValue] | None:
    if isinstance(value, bool):
        return (name, 1.0) if value else None
    if isinstance(value, int | float):
        if value == 1 and "=" in name:
            key, _, text = name.partition("=")
            return key, text
        return name, float(value)
    if isinstance(value, str):
        return name, value
    return None


def _namespaces(obj: Mapping[str, Any], default: str) -> dict[str, dict[str, FeatureValue]]:
    """Namespaces of a DSJSON context object (shared part or one action)."""
    spaces: dict[str, dict[str, FeatureValue]] = {}

    def add(space: str, name: str, value: Any) -> None:
        if name.startswith("_"):
            return
        if isinstance(value, Mapping):
            for key, inner in value.items():
                add(name, key, inner)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    for key, inner in item.items():
                        add(name, key, inner)
        else:
            feature = _value(name, value)
            if feature is not None:
                spaces.setdefault(space, {})[feature[0]] = feature[1]

    for name, value in obj.items():
        # objects and arrays become the namespace ``name``; scalars go to ``default``
        add(default, name, value)
    return spaces


def _parse_timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    body = text.rstrip("Z")
    if "." in body:
        head, _, fraction = body.partition(".")
        body = f"{head}.{fraction[:6]}"
    moment = datetime.fromisoformat(body)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def from_dsjson(record: Mapping[str, Any]) -> LoggedDecision:
    """The decision of one DSJSON object; KeyError / ValueError when it is not a CB event.

    The reward is the negated ``_label_cost`` and must lie in [0, 1].
    """
    content = record["c"]
    actions = content.get("_multi") or []
    if not actions:
        raise ValueError("a DSJSON decision needs actions in c._multi")
    names = [str(a.get("_tag") or index + 1) for index, a in enumerate(actions)]
    if len(set(names)) != len(names):
        names = [str(index + 1) for index in range(len(actions))]
    arms = tuple(
        ArmFeatures(arm=name, namespaces=_namespaces(action, DEFAULT_NAMESPACE))
        for name, action in zip(names, actions, strict=True)
    )
    context = Context(shared=_namespaces(content, DEFAULT_NAMESPACE), arms=arms)
    if "_labelIndex" in record:
        chosen = int(record["_labelIndex"])
    else:
        chosen = int(record["_label_Action"]) - 1
    ids = [int(a) for a in record.get("a", [])]
    probabilities = [float(p) for p in record.get("p", [])]
    pmf = {names[i - 1]: p for i, p in zip(ids, probabilities, strict=True)}
    probability = float(record["_label_probability"])
    meta = record.get(META_KEY) or {}
    outcome = meta.get("outcome")
    # The cost is the reward's negation (learner.vw_policy.vw_cost), so negate it back.
    reward = -float(record["_label_cost"]) + 0.0
    return LoggedDecision(
        decision_id=str(record.get("EventId", "")),
        context=context,
        chosen_arm=names[chosen],
        probability=probability,
        pmf=pmf or {names[chosen]: 1.0},
        reward=reward,
        stage=str(meta.get("stage", "pre")),
        policy_name=str(meta.get("policy_name", "")),
        policy_version=int(meta.get("policy_version", 0)),
        timestamp=_parse_timestamp(record.get("Timestamp")),
        reward_source=str(meta.get("reward_source", "")),
        outcome=None
        if outcome is None
        else Outcome(
            quality=float(outcome["quality"]),
            cost_usd=float(outcome["cost_usd"]),
            latency_ms=float(outcome["latency_ms"]),
        ),
    )
