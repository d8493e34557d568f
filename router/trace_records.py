"""A routed request's trace as flat records: one row per decision, per arm of a PMF, per
signal, per masked arm and per component.

The input is the ``trace`` object of a ``/route-and-run`` response (or the
``signalroute.trace`` of an OpenAI-compatible one): plain JSON, so these functions work on
a response body as received and on traces read back from files. Each returns a list of
dicts with the same keys in every row, ready for a table (``pandas.DataFrame(rows)``).
``step`` numbers the decisions of a request in the order they were made.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Trace = Mapping[str, Any]
Row = dict[str, Any]


def _decisions(trace: Trace) -> Iterator[tuple[int, Mapping[str, Any]]]:
    decisions: Sequence[Mapping[str, Any]] = trace.get("decisions") or ()
    yield from enumerate(decisions, start=1)


def decision_rows(trace: Trace) -> list[Row]:
    """One row per decision: stage, arm (or action), probability, outcome, reward, cost,
    latency, policy version, how many arms were eligible and how many masked."""
    return [
        {
            "step": step,
            "stage": d["stage"],
            "arm": d["arm"],
            "probability": d["probability"],
            "outcome": d["outcome"],
            "reward": d.get("reward"),
            "cost_usd": d.get("cost_usd"),
            "latency_ms": d.get("latency_ms"),
            "policy_version": d.get("policy_version"),
            "eligible": len(d.get("pmf") or {}),
            "masked": len(d.get("masked") or {}),
        }
        for step, d in _decisions(trace)
    ]


def pmf_rows(trace: Trace) -> list[Row]:
    """One row per (decision, eligible arm): the probability the arm had and whether it
    was the one drawn."""
    return [
        {
            "step": step,
            "stage": d["stage"],
            "arm": arm,
            "probability": probability,
            "chosen": arm == d["arm"],
        }
        for step, d in _decisions(trace)
        for arm, probability in (d.get("pmf") or {}).items()
    ]


def signal_rows(trace: Trace) -> list[Row]:
    """One row per signal a decision saw: ``family`` is ``query``, ``historical``,
    ``output``, ``cut`` or ``arm:<namespace>`` (the chosen arm's own features)."""
    rows: list[Row] = []
    for step, d in _decisions(trace):
        for family, values in (d.get("signals") or {}).items():
            if family == "arm":
                for namespace, features in values.items():
                    rows += _signal(step, d, f"arm:{namespace}", features)
            else:
                rows += _signal(step, d, family, values)
    return rows


def _signal(step: int, decision: Mapping[str, Any], family: str, values: Any) -> list[Row]:
    if not isinstance(values, Mapping):
        return []
    return [
        {"step": step, "stage": decision["stage"], "family": family, "signal": k, "value": v}
        for k, v in values.items()
    ]


def masked_rows(trace: Trace) -> list[Row]:
    """One row per arm a decision could not draw, with the reason it was masked."""
    return [
        {"step": step, "stage": d["stage"], "arm": arm, "reason": reason}
        for step, d in _decisions(trace)
        for arm, reason in (d.get("masked") or {}).items()
    ]


def component_rows(trace: Trace) -> list[Row]:
    """One row per part of the final answer: its kind, the arm that wrote it, its size."""
    components: Sequence[Mapping[str, Any]] = trace.get("components") or ()
    return [
        {"index": c["index"], "kind": c["kind"], "arm": c["arm"], "chars": c["chars"]}
        for c in components
    ]


def stages(trace: Trace) -> tuple[str, ...]:
    """The stages of a trace's decisions, in order (``pre``, ``in``, ``component``, ``post``)."""
    return tuple(d["stage"] for _, d in _decisions(trace))
