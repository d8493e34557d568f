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
    """One row per part of the final answer: its kind, the arm that wrote it, its size,
    whether it was ``replaced`` (else kept as the answering arm wrote it), and the judge's
    ``score`` and ``reason`` for it when the answer was judged per component (else None)."""
    components: Sequence[Mapping[str, Any]] = trace.get("components") or ()
    return [
        {
            "index": c["index"],
            "kind": c["kind"],
            "arm": c["arm"],
            "chars": c["chars"],
            "replaced": bool(c.get("replaced", False)),
            "score": c.get("score"),
            "reason": c.get("reason"),
        }
        for c in components
    ]


def component_verdict_rows(trace: Trace) -> list[Row]:
    """One row per grade the judge gave a component, in the order they were given: the
    grades of the first answer (from its generation decision), then those of each
    replacement (from the component decisions that re-routed a part on the judge's word).
    ``arm`` wrote the component; ``outcome`` is what became of it: ``kept`` (in the final
    answer), ``replaced`` (another arm's replacement took its place) or ``dropped`` (a
    replacement that was not kept). Works on a ``/route-and-run`` trace and on the body of
    ``GET /requests/{id}`` (both list the ``decisions`` with their ``details``)."""
    rows: list[Row] = []
    decisions = list(_decisions(trace))
    rerouted = {
        d["details"]["component"]: d
        for _, d in decisions
        if d["stage"] == "component" and (d.get("details") or {}).get("source") == "judge"
    }
    for step, d in decisions:
        details = d.get("details") or {}
        for verdict in details.get("component_verdicts") or ():
            again = rerouted.get(verdict["index"])
            replaced = again is not None and again["outcome"] == "replaced"
            rows.append(_verdict_row(step, verdict, "replaced" if replaced else "kept"))
        replacement = details.get("replacement_verdict")
        if d["stage"] == "component" and replacement:
            kept = d["outcome"] == "replaced"
            rows.append(_verdict_row(step, replacement, "kept" if kept else "dropped"))
    return rows


def _verdict_row(step: int, verdict: Mapping[str, Any], outcome: str) -> Row:
    return {
        "step": step,
        "index": verdict["index"],
        "kind": verdict["kind"],
        "arm": verdict["arm"],
        "score": verdict["score"],
        "reason": verdict["reason"],
        "outcome": outcome,
    }


def stages(trace: Trace) -> tuple[str, ...]:
    """The stages of a trace's decisions, in order (``pre``, ``in``, ``component``, ``post``)."""
    return tuple(d["stage"] for _, d in _decisions(trace))
