"""Assemble a bandit context from the four signal families.

Shared namespaces: ``Q`` (query signals), ``H`` (neighbourhood, the caller's own history and
budget use). Per-arm namespaces: ``A`` (identity, price, capabilities, whether the arm served
the conversation's previous turn), ``S`` (system health),
``K`` (that arm's outcomes among the neighbours, overall and for this user).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache

from features.historical import HistoricalSignals
from features.query import QuerySignals
from features.system import ArmHealth, Spend, health_features, spend_features
from learner.context import ArmFeatures, Context
from router.pool import Arm

SHARED_FAMILIES = {
    "Q": "query",
    "H": "historical",
    "I": "cut",
    "O": "output",
    "C": "component",
    "G": "gate",
}
"""The signal family each shared namespace of a context holds (a trace's names for them)."""


def arm_identity(arm: Arm) -> dict[str, float | str]:
    """Static features of an arm: its name, log list price, capability tags (a new dict each
    call: callers add to it)."""
    return dict(
        _identity(
            arm.name,
            arm.input_usd_per_mtok,
            arm.output_usd_per_mtok,
            arm.context_window,
            arm.capabilities,
        )
    )


@lru_cache(maxsize=1024)
def _identity(
    name: str,
    input_usd_per_mtok: float,
    output_usd_per_mtok: float,
    context_window: int,
    capabilities: frozenset[str],
) -> dict[str, float | str]:
    """``arm_identity``, computed once per arm (it is in every arm's context, every
    decision); the cached dict is only ever copied."""
    blended = (input_usd_per_mtok + 3 * output_usd_per_mtok) / 4
    values: dict[str, float | str] = {
        "arm": name,
        "log_price": round(math.log1p(blended), 4),
        "log_window": round(math.log(context_window) / 10, 4),
    }
    for capability in sorted(capabilities):
        values[f"cap_{capability}"] = 1.0
    return values


def build_context(
    arms: tuple[Arm, ...],
    query: QuerySignals,
    history: HistoricalSignals,
    user_history: HistoricalSignals,
    health: Mapping[str, ArmHealth],
    spend: Spend,
    previous_arm: str | None = None,
) -> Context:
    """The context for a decision among ``arms`` (already masked), in their order;
    ``previous_arm`` (the arm of the conversation's previous turn) is ``A:prev_turn``."""
    shared_history = history.shared_features() | user_history.shared_features(prefix="u_")
    shared_history |= spend_features(spend)
    return Context(
        shared={"Q": query.as_features(), "H": shared_history},
        arms=tuple(
            ArmFeatures(
                arm=arm.name,
                namespaces={
                    "A": arm_identity(arm)
                    | ({"prev_turn": 1.0} if arm.name == previous_arm else {}),
                    "S": health_features(health.get(arm.name, ArmHealth())),
                    "K": history.arm_features(arm.name)
                    | user_history.arm_features(arm.name, prefix="u_"),
                },
            )
            for arm in arms
        ),
    )


def in_generation_context(
    base: Context, cut_arm: str, detector: str, chars_before_cut: int
) -> Context:
    """The pre-generation context plus what happened to the run that was cut (``I``)."""
    shared = dict(base.shared)
    shared["I"] = {
        "cut_by": detector,
        "cut_arm": cut_arm,
        "log_chars": round(math.log1p(chars_before_cut), 4),
    }
    return Context(shared=shared, arms=base.arms)


def escalation_context(
    query: QuerySignals,
    output: Mapping[str, float | str],
    targets: tuple[Arm, ...],
    health: Mapping[str, ArmHealth],
    accept: str,
    escalate: Callable[[str], str],
) -> Context:
    """Accept the answer, or escalate it to one of ``targets``: output signals ``O`` shared."""
    actions = [ArmFeatures(arm=accept, namespaces={"A": {"action": accept}})]
    for arm in targets:
        identity = arm_identity(arm)
        identity["action"] = "escalate"
        actions.append(
            ArmFeatures(
                arm=escalate(arm.name),
                namespaces={
                    "A": identity,
                    "S": health_features(health.get(arm.name, ArmHealth())),
                },
            )
        )
    return Context(shared={"Q": query.as_features(), "O": dict(output)}, arms=tuple(actions))


def judge_gate_context(
    query: QuerySignals, gate: Mapping[str, float | str], actions: tuple[str, ...]
) -> Context:
    """Ask the judge or skip it: the answer's validators, arm, history and the judge's price
    shared in ``G`` (``router.lifecycle.judge_gate``), one action per ``actions``."""
    return Context(
        shared={"Q": query.as_features(), "G": dict(gate)},
        arms=tuple(
            ArmFeatures(arm=action, namespaces={"A": {"action": action}}) for action in actions
        ),
    )


def component_context(
    arms: tuple[Arm, ...],
    query: QuerySignals,
    kind: str,
    failure: str,
    chars: int,
    health: Mapping[str, ArmHealth],
) -> Context:
    """Which arm rewrites a failed component: the component's kind and failure in ``C``."""
    return Context(
        shared={
            "Q": query.as_features(),
            "C": {"kind": kind, "failure": failure, "log_chars": round(math.log1p(chars), 4)},
        },
        arms=tuple(
            ArmFeatures(
                arm=arm.name,
                namespaces={
                    "A": arm_identity(arm),
                    "S": health_features(health.get(arm.name, ArmHealth())),
                },
            )
            for arm in arms
        ),
    )
