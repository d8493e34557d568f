"""``bench-overhead`` end to end on a handful of requests (three real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.tools.service_bench import overhead


def bench_overhead(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``signalroute bench-overhead ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "bench-overhead", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.usefixtures("replay_data_dir")
def test_bench_overhead_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "overhead"
    result = bench_overhead(
        *("--n", "8", "--concurrent-n", "12", "--concurrency", "4", "--history", "30"),
        *("--out", str(out)),
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "overhead.json").read_text())
    for key in ("decision_ms", "http_added_ms"):
        assert 0 < report[key]["p50"] <= report[key]["p99"]
    assert report["litellm_added_ms"] is None
    assert report["concurrency"] == 4
    assert report["sequential"]["requests"] == 8
    assert report["concurrent"]["requests"] == 12
    assert report["history"] == {"requests": 30, "errors": 0}
    assert report["sequential"]["neighbours_p50"] == 20  # k: the history was there to find
    parts = report["sequential"]["decision_parts_p50_ms"]
    assert set(parts) == set(overhead.DECISION_PARTS)
    assert all(value > 0 for value in parts.values())
    markdown = (out / "overhead.md").read_text()
    assert "| sequential (c=1) |" in markdown
    assert "Sequential decision in parts, p50 (ms): embed " in markdown
    assert "Routed first, not timed: 30 requests (0 failed)" in markdown


def test_history_prompts_are_past_the_timed_ones_and_each_new() -> None:
    shuffled = ["a", "b", "c", "d"]
    assert overhead.history_prompts(shuffled, 2, 2) == ["c", "d"]
    assert overhead.history_prompts(shuffled, 2, 5) == [
        "c",
        "d",
        "c (again, 2)",
        "d (again, 3)",
        "c (again, 4)",
    ]
    assert overhead.history_prompts(shuffled, 4, 1) == ["a"]  # all timed: any will do
    assert overhead.history_prompts(shuffled, 1, 0) == []


def test_bad_counts_are_refused_before_anything_starts(tmp_path: Path) -> None:
    result = bench_overhead("--n", "0", "--out", str(tmp_path))
    assert result.returncode != 0
    assert "--n must be at least 1, got 0" in result.stderr
    assert not (tmp_path / "overhead.json").exists()


def test_a_phase_where_every_request_failed_is_reported_not_a_crash() -> None:
    report = {"sequential": overhead._summary([], 1.0, 1, ["ReadError: x"])}
    assert report["sequential"]["decision_ms"] is None
    assert report["sequential"]["errors"] == 1
    assert "n/a (no request succeeded)" in overhead.markdown(report)
    assert "concurrent" not in overhead.markdown(report)  # not run: no row


@pytest.mark.usefixtures("replay_data_dir")
def test_more_prompts_than_the_dataset_holds_are_refused(tmp_path: Path) -> None:
    result = bench_overhead("--n", "999999", "--out", str(tmp_path))
    assert result.returncode != 0
    assert "--n is 999999, but the dataset holds" in result.stderr
    assert not (tmp_path / "overhead.json").exists()


def test_a_failed_litellm_call_keeps_signalroute_s_sample() -> None:
    samples = [
        overhead.Sample(decision_ms=2.0, router_ms=12.0, direct_ms=4.0, litellm_ms=15.0),
        overhead.Sample(
            decision_ms=3.0,
            router_ms=13.0,
            direct_ms=4.0,
            litellm_ms=None,
            litellm_error="ConfigError: LiteLLM answered 500",
        ),
    ]
    summary = overhead._summary(samples, 1.0, 1, [])
    assert summary["requests"] == 2
    assert summary["errors"] == 0
    assert summary["litellm_errors"] == 1
    assert summary["http_added_ms"]["p50"] == pytest.approx(8.5)
    assert summary["litellm_added_ms"]["p50"] == pytest.approx(11.0)
    assert "| 0 (LiteLLM: 1) |" in overhead.markdown({"sequential": summary})
