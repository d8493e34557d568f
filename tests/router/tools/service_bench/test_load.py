"""``bench-load`` end to end for a few seconds: a 2-worker router, the replay pool and an
embedded Postgres as real processes; the report and the store check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.tools.service_bench.loadgen import Routed, SeenDecision, in_window, parse_routed


@pytest.mark.usefixtures("replay_data_dir")
def test_bench_load_writes_its_report_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "load"
    args = ["--duration", "8", "--warmup", "2", "--concurrency", "4", "--direct-every", "2"]
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "bench-load", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "load.json").read_text())
    assert report["config"]["workers"] == 2
    assert report["errors"] == 0, report["error_examples"]
    assert report["ok"] == report["requests"] > 0
    assert report["throughput_rps"] > 0
    assert 0 < report["router_added_ms"]["p50"] <= report["router_added_ms"]["p99"]
    assert report["store"]["requests"] == report["ok"]
    assert report["store"]["decisions"] >= report["ok"]
    assert report["store"]["lost"] == 0, report["store"]["examples"]
    assert report["router_exit_code"] == 0
    assert report["cpu_ms_per_request"]["router"] > 0
    assert "| workers | in flight |" in (out / "load.md").read_text()


def test_the_window_keeps_requests_that_started_and_ended_in_it() -> None:
    inside = Routed(started_s=2.0, ended_s=3.0, status=200)
    early = Routed(started_s=0.5, ended_s=2.5, status=200)
    late = Routed(started_s=9.5, ended_s=10.5, status=200)
    assert in_window([inside, early, late], 1.0, 10.0) == [inside]


def test_a_routed_answer_gives_its_id_and_decisions() -> None:
    body = {
        "id": "r1",
        "model": "m",
        "trace": {
            "decisions": [{"decision_id": "d1", "stage": "pre", "reward": 0.5}],
            "timings": {"decision_ms": 1.5},
        },
    }
    assert parse_routed(body) == ("r1", "m", (SeenDecision("d1", "pre", 0.5),), 1.5)
    with pytest.raises(ValueError, match="without"):
        parse_routed({"id": "r1"})
