"""The newest offline-evaluation report under the reports folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from router.dashboard.reports import newest_report


def write(path: Path, body: str, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def report(n: int) -> str:
    return json.dumps({"n_logged": n, "candidates": []})


def test_the_newest_readable_report_wins_and_a_broken_newer_one_is_named(tmp_path: Path) -> None:
    write(tmp_path / "old" / "replay.json", report(1), 1_000)
    write(tmp_path / "new" / "deeper" / "replay.json", report(2), 2_000)
    write(tmp_path / "broken" / "replay.json", "{not json", 3_000)
    write(tmp_path / "other" / "replay.json", json.dumps({"something": "else"}), 2_500)
    write(tmp_path / "notes.json", report(9), 4_000)  # not a replay.json

    found = newest_report(tmp_path)

    assert found is not None
    assert found["report"]["n_logged"] == 2
    assert found["path"] == "new/deeper/replay.json"
    assert found["written_at"].startswith("1970-01-01T00:33:20")
    assert found["skipped"] is not None
    assert found["skipped"].startswith("broken/replay.json:")


def test_no_folder_or_no_report_is_none(tmp_path: Path) -> None:
    assert newest_report(tmp_path / "missing") is None
    write(tmp_path / "replay.json", "[]", 1_000)
    assert newest_report(tmp_path) is None
