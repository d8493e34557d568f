"""DSJSON and JSONL round trips, and a real VW workspace reading the DSJSON export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import vowpalwabbit

from learner.ope.dsjson import from_dsjson, to_dsjson
from learner.ope.jsonl import from_record, to_record
from learner.ope.log import LoggedDecision, Outcome
from learner.vw_format import adf_lines
from learner.vw_policy import vw_cost
from tests.learner.ope.synthetic import simulate


def _decision() -> LoggedDecision:
    decision = simulate(1, np.random.default_rng(0)).decisions[0]
    return LoggedDecision(
        decision_id="7f9c",
        context=decision.context,
        chosen_arm=decision.chosen_arm,
        probability=decision.probability,
        pmf=decision.pmf,
        reward=0.75,
        stage="pre",
        policy_name="pre",
        policy_version=12,
        timestamp=datetime(2026, 3, 1, 12, 30, 5, 250000, tzinfo=UTC),
        reward_source="thumbs",
        outcome=Outcome(quality=1.0, cost_usd=0.002, latency_ms=850.0),
    )


@pytest.mark.parametrize(("encode", "decode"), [(to_dsjson, from_dsjson), (to_record, from_record)])
def test_round_trip(encode, decode) -> None:  # type: ignore[no-untyped-def]
    decision = _decision()
    again = decode(json.loads(json.dumps(encode(decision))))
    assert again == decision


def test_dsjson_fields_follow_the_decision_service_convention() -> None:
    decision = _decision()
    record = to_dsjson(decision)
    chosen = decision.context.index(decision.chosen_arm)
    assert record["_label_cost"] == vw_cost(0.75)
    assert record["_label_probability"] == decision.probability
    assert record["_label_Action"] == chosen + 1
    assert record["_labelIndex"] == chosen
    assert record["a"][0] == chosen + 1
    assert sorted(record["a"]) == [1, 2, 3]
    assert record["p"][0] == decision.probability
    assert len(record["c"]["_multi"]) == 3
    kind = decision.context.shared["Q"]["kind"]
    assert record["c"]["Q"][f"kind={kind}"] == 1
    assert record["Timestamp"] == "2026-03-01T12:30:05.250000Z"


def test_vw_reads_the_dsjson_export(tmp_path: Path) -> None:
    """A real ``--dsjson`` workspace reads every exported decision, and a model learned from
    the export predicts exactly what one learned from the same decisions as text does."""
    log = simulate(200, np.random.default_rng(1))
    path = tmp_path / "log.dsjson"
    path.write_text("".join(json.dumps(to_dsjson(d)) + "\n" for d in log.decisions))
    args = "--cb_adf --cb_type ips --quiet -q QA --random_seed 3"
    from_file = vowpalwabbit.Workspace(f"{args} --dsjson -d {path} -f {tmp_path / 'm.vw'}")
    from_file.run_parser()
    assert from_file.get_weighted_examples() == len(log)
    from_file.finish()

    from_text = vowpalwabbit.Workspace(args)
    for d in log.decisions:
        label = (d.context.index(d.chosen_arm), vw_cost(d.reward), d.probability)
        from_text.learn(adf_lines(d.context, label))
    reloaded = vowpalwabbit.Workspace(f"--quiet -i {tmp_path / 'm.vw'}")
    probe = log.decisions[0].context
    assert reloaded.predict(adf_lines(probe)) == pytest.approx(
        from_text.predict(adf_lines(probe)), abs=1e-6
    )
    reloaded.finish()
    from_text.finish()


def test_foreign_dsjson_is_read() -> None:
    """A decision-service event with nested namespaces and no arm tags."""
    record = {
        "_label_cost": -1.0,
        "_label_probability": 0.85,
        "_label_Action": 2,
        "_labelIndex": 1,
        "Version": "1",
        "EventId": "e1",
        "a": [2, 1],
        "c": {
            "User": {"name": "Alice", "age": 3},
            "_multi": [{"i": {"id": "latte"}}, {"i": {"id": "mocha"}, "j": [{"hot": True}]}],
        },
        "p": [0.85, 0.15],
        "Timestamp": "2021-02-04T16:31:29.2460000Z",
    }
    decision = from_dsjson(record)
    assert decision.chosen_arm == "2"
    assert decision.reward == 1.0
    assert decision.pmf == {"2": 0.85, "1": 0.15}
    assert decision.context.shared["User"] == {"name": "Alice", "age": 3.0}
    assert decision.context.arms[1].namespaces == {"i": {"id": "mocha"}, "j": {"hot": 1.0}}
    assert decision.timestamp == datetime(2021, 2, 4, 16, 31, 29, 246000, tzinfo=UTC)
