"""``signalroute replay --validate`` on a small subset of RouterBench (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

from router.cli import main

KEYS = {"estimator", "n_logged", "policy", "estimate", "true_value", "relative_error"}


def test_validate_on_a_subset(replay_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ope"
    code = main(
        [
            "replay", "--validate", "--dataset", "routerbench", "--data", str(replay_data_dir),
            "--prompts", "150", "--sizes", "300,600", "--seeds", "2", "--bootstrap", "30",
            "--out", str(out), "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    rows = json.loads((out / "ope.json").read_text())
    assert rows
    assert all(set(row) >= KEYS for row in rows)
    assert {row["estimator"] for row in rows} == {"ips", "snips", "dm", "dr"}
    assert {row["n_logged"] for row in rows} == {300, 600}
    supported = [r for r in rows if r["in_support"]]
    unsupported = [r for r in rows if not r["in_support"]]
    assert supported
    assert unsupported
    # IPS cannot see an arm the logging policy never explored
    assert any(r["estimator"] == "ips" and r["relative_error"] == 1.0 for r in unsupported)
    for row in supported:
        if row["estimator"] == "dr":
            assert row["relative_error"] < 0.25
    markdown = (out / "ope.md").read_text()
    assert "| policy | true value | n logged | IPS | SNIPS | DM | DR |" in markdown
