"""``bench-load`` end to end for a few seconds: a 2-worker router, the replay pool and an
embedded Postgres as real processes; the report and the store check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.tools.service_bench import load
from router.tools.service_bench.load_check import StoreCheck
from router.tools.service_bench.loadgen import (
    Routed,
    SeenDecision,
    in_window,
    models_in_order,
    parse_routed,
)

FAKE_LITELLM = Path(__file__).with_name("fake_litellm.py")


def fake_litellm_executable(folder: Path) -> Path:
    """An executable that starts the stand-in proxy with the arguments it is given."""
    executable = folder / "litellm"
    executable.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_LITELLM}" "$@"\n')
    executable.chmod(0o755)
    return executable


@pytest.mark.usefixtures("replay_data_dir")
def test_bench_load_writes_its_report_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "load"
    args = ["--duration", "8", "--warmup", "2", "--concurrency", "4", "--direct-every", "2"]
    args += ["--rss-every", "1", "--litellm", str(fake_litellm_executable(tmp_path))]
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
    markdown = (out / "load.md").read_text()
    assert "| workers | in flight |" in markdown
    reference = report["litellm"]
    assert reference["errors"] == 0, reference["error_examples"]
    assert reference["requests"] > 0
    assert reference["routed_rps"] > 0
    assert 0 < reference["p50_ms"] <= reference["p99_ms"]
    assert reference["cpu_ms_per_request"]["litellm"] > 0
    assert reference["cpu_ms_per_request"]["replay_pool"] > 0
    assert report["ratio"]["throughput"] == pytest.approx(
        report["throughput_rps"] / reference["routed_rps"], rel=0.01
    )
    assert report["ratio"]["p99"] == pytest.approx(
        report["latency_ms"]["p99"] / reference["p99_ms"], rel=0.01
    )
    assert isinstance(report["targets"]["met"], bool)
    assert "Signalroute over LiteLLM: throughput" in markdown
    rss = report["rss"]
    assert len(rss["samples"]) >= 8
    assert all(sample["router"] > 0 and sample["postgres"] > 0 for sample in rss["samples"])
    assert set(rss["growth_pct"]) == {"router", "replay_pool", "postgres", "load_generator"}
    assert rss["plot"] == "rss.png"
    assert (out / "rss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_proxy_gets_the_models_the_router_chose_in_request_order() -> None:
    results = [
        Routed(1.0, 2.0, 200, model="b", index=1),
        Routed(1.0, 2.0, 500, "boom", index=2),
        Routed(0.0, 1.0, 200, model="a", index=0),
        Routed(1.0, 3.0, 200, model="c", index=3),
    ]
    assert models_in_order(results) == ("a", "b", "c")


def test_the_ratios_are_signalroute_over_litellm_and_the_target_needs_nothing_lost() -> None:
    report = {
        "throughput_rps": 150.0,
        "latency_ms": {"p50": 20.0, "p99": 60.0, "n": 100},
        "errors": 0,
        "targets": {"throughput_ratio_over_litellm": 1.5, "met": None},
    }
    reference = {"routed_rps": 50.0, "p99_ms": 240.0}
    nothing_lost = StoreCheck(10, 10, 10, 0, 0, 0, 0)
    merged = load.with_reference(report, reference, nothing_lost)
    assert merged["ratio"] == {"throughput": 3.0, "p99": 0.25}
    assert merged["targets"]["met"] is True
    one_lost = StoreCheck(10, 10, 10, 0, 0, 0, 1)
    assert load.with_reference(report, reference, one_lost)["targets"]["met"] is False
    slower = load.with_reference({**report, "throughput_rps": 60.0}, reference, nothing_lost)
    assert slower["ratio"]["throughput"] == 1.2
    assert slower["targets"]["met"] is False


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
