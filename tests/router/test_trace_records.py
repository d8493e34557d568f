"""A routed request's trace (as the HTTP response carries it) flattened into rows."""

from __future__ import annotations

from typing import Any

from router import trace_records

TRACE: dict[str, Any] = {
    "decisions": [
        {
            "decision_id": "d1",
            "stage": "pre",
            "arm": "llama",
            "probability": 0.5,
            "pmf": {"llama": 0.5, "wizard": 0.5},
            "policy_version": 3,
            "signals": {
                "query": {"log_tokens": 2.7, "language": "en"},
                "historical": {"neighbours": 0.0},
                "arm": {"A": {"arm": "llama", "log_price": 0.6}, "S": {"error_rate": 0.0}},
            },
            "masked": {"gpt-4": "estimated cost $0.02 exceeds max_cost_usd $0.01"},
            "outcome": "cut: language: answer switched to es",
            "reward": 0.0,
            "cost_usd": 0.0001,
            "latency_ms": 12.0,
            "details": {"detector": "language"},
        },
        {
            "decision_id": "d2",
            "stage": "in",
            "arm": "wizard",
            "probability": 1.0,
            "pmf": {"wizard": 1.0},
            "policy_version": 0,
            "signals": {"query": {"log_tokens": 2.7}, "cut": {"cut_by": "language"}},
            "masked": {"gpt-4": "too expensive", "llama": "already failed for this request"},
            "outcome": "ok",
            "reward": 0.9,
            "cost_usd": 0.0002,
            "latency_ms": 20.0,
            "details": {},
        },
        {
            "decision_id": "d3",
            "stage": "post",
            "arm": "accept",
            "probability": 0.5,
            "pmf": {"accept": 0.5, "escalate:gpt-4": 0.5},
            "policy_version": 1,
            "signals": {"output": {"chars": 120.0}},
            "masked": {},
            "outcome": "accepted",
            "reward": 1.0,
        },
    ],
    "components": [{"index": 0, "kind": "prose", "arm": "wizard", "chars": 120}],
}


def test_decision_rows_number_the_steps() -> None:
    rows = trace_records.decision_rows(TRACE)
    assert [(r["step"], r["stage"], r["arm"]) for r in rows] == [
        (1, "pre", "llama"),
        (2, "in", "wizard"),
        (3, "post", "accept"),
    ]
    assert rows[0]["eligible"] == 2
    assert rows[1]["masked"] == 2
    assert rows[2]["cost_usd"] is None  # an accept costs nothing and says so
    assert trace_records.stages(TRACE) == ("pre", "in", "post")


def test_pmf_rows_mark_the_drawn_arm() -> None:
    rows = trace_records.pmf_rows(TRACE)
    assert len(rows) == 5
    assert [r["arm"] for r in rows if r["chosen"]] == ["llama", "wizard", "accept"]


def test_signal_rows_keep_each_family() -> None:
    rows = trace_records.signal_rows(TRACE)
    families = {(r["step"], r["family"]) for r in rows}
    assert families == {
        (1, "query"),
        (1, "historical"),
        (1, "arm:A"),
        (1, "arm:S"),
        (2, "query"),
        (2, "cut"),
        (3, "output"),
    }
    assert {"step": 1, "stage": "pre", "family": "arm:A", "signal": "arm", "value": "llama"} in rows


def test_masked_and_component_rows() -> None:
    masked = trace_records.masked_rows(TRACE)
    assert [(r["step"], r["arm"]) for r in masked] == [(1, "gpt-4"), (2, "gpt-4"), (2, "llama")]
    assert trace_records.component_rows(TRACE) == [
        {
            "index": 0,
            "kind": "prose",
            "arm": "wizard",
            "chars": 120,
            "replaced": False,
            "score": None,
            "reason": None,
        }
    ]


def _decision(stage: str, arm: str, outcome: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"stage": stage, "arm": arm, "probability": 1.0, "outcome": outcome, "details": details}


def _verdict(index: int, kind: str, arm: str, score: float) -> dict[str, Any]:
    return {"index": index, "kind": kind, "arm": arm, "score": score, "reason": f"r{index}"}


JUDGED: dict[str, Any] = {
    "decisions": [
        _decision(
            "pre",
            "cheap",
            "ok",
            {
                "component_verdicts": [
                    _verdict(0, "prose", "cheap", 1.0),
                    _verdict(1, "code", "cheap", 0.0),
                    _verdict(2, "code", "cheap", 0.0),
                ]
            },
        ),
        _decision(
            "component",
            "strong",
            "replaced",
            {
                "component": 1,
                "source": "judge",
                "verdict": _verdict(1, "code", "cheap", 0.0),
                "replacement_verdict": _verdict(1, "code", "strong", 1.0),
            },
        ),
        _decision(
            "component",
            "mid",
            "replacement failed too",
            {
                "component": 2,
                "source": "judge",
                "verdict": _verdict(2, "code", "cheap", 0.0),
                "replacement_verdict": None,
            },
        ),
        _decision("post", "accept", "accepted", {}),
    ],
    "components": [
        {
            "index": 0,
            "kind": "prose",
            "arm": "cheap",
            "chars": 9,
            "replaced": False,
            "score": 1.0,
            "reason": "r0",
        },
        {
            "index": 1,
            "kind": "code",
            "arm": "strong",
            "chars": 30,
            "replaced": True,
            "score": 1.0,
            "reason": "r1",
        },
        {
            "index": 2,
            "kind": "code",
            "arm": "cheap",
            "chars": 30,
            "replaced": False,
            "score": 0.0,
            "reason": "r2",
        },
    ],
}


def test_component_verdict_rows_say_what_became_of_each_part() -> None:
    rows = trace_records.component_verdict_rows(JUDGED)
    assert [(r["step"], r["index"], r["arm"], r["score"], r["outcome"]) for r in rows] == [
        (1, 0, "cheap", 1.0, "kept"),
        (1, 1, "cheap", 0.0, "replaced"),
        (1, 2, "cheap", 0.0, "kept"),  # its replacement failed: the part stayed
        (2, 1, "strong", 1.0, "kept"),
    ]
    parts = trace_records.component_rows(JUDGED)
    assert [(r["arm"], r["replaced"], r["score"]) for r in parts] == [
        ("cheap", False, 1.0),
        ("strong", True, 1.0),
        ("cheap", False, 0.0),
    ]
    assert trace_records.component_verdict_rows(TRACE) == []


def test_an_empty_trace_gives_no_rows() -> None:
    empty: dict[str, Any] = {"decisions": []}
    assert trace_records.decision_rows(empty) == []
    assert trace_records.signal_rows(empty) == []
    assert trace_records.component_rows(empty) == []
