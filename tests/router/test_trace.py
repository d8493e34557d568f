"""A decision's and a component's trace, as a response carries them: every field, with the
same JSON ``dataclasses.asdict`` gives."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

from router.trace import ComponentTrace, DecisionTrace


def test_a_trace_as_json_is_what_asdict_gives_without_copying() -> None:
    decision = DecisionTrace(
        decision_id="d1",
        stage="pre",
        arm="small",
        probability=0.25,
        pmf={"small": 0.25, "large": 0.75},
        policy_version=7,
        signals={"query": {"tokens": 12.0, "lang": "en"}, "arm": {"S": {"in_flight": 0.0}}},
        masked={"vision": "lacks capability vision"},
        outcome="ok",
        reward=0.5,
        cost_usd=0.001,
        latency_ms=12.5,
        details={"tool_calls": [{"name": "f", "arguments": "{}"}], "credit": "answer"},
        policy="pre",
    )
    component = ComponentTrace(index=0, kind="code", arm="small", chars=10, score=0.5)
    for trace in (decision, component):
        shown = trace.as_json()
        assert list(shown) == [f.name for f in fields(trace)]
        assert json.dumps(shown, sort_keys=True) == json.dumps(asdict(trace), sort_keys=True)
    assert decision.as_json()["signals"] is decision.signals  # shared, not copied
