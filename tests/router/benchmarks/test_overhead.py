"""``bench-overhead`` end to end on a handful of requests (three real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.benchmarks import overhead


@pytest.mark.usefixtures("replay_data_dir")
def test_bench_overhead_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "overhead"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.cli",
            "bench-overhead",
            "--n",
            "8",
            "--concurrent-n",
            "12",
            "--concurrency",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
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
    assert "| sequential (c=1) |" in (out / "overhead.md").read_text()


def test_bad_counts_are_refused_before_anything_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "bench-overhead", "--n", "0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "--n must be at least 1, got 0" in result.stderr
    assert not (tmp_path / "overhead.json").exists()


def test_a_phase_where_every_request_failed_is_reported_not_a_crash() -> None:
    report = {"sequential": overhead._summary([], 1.0, 1, ["ReadError: x"])}
    assert report["sequential"]["decision_ms"] is None
    assert report["sequential"]["errors"] == 1
    assert "n/a (no request succeeded)" in overhead.markdown(report)
    assert "concurrent" not in overhead.markdown(report)  # not run: no row
