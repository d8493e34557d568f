"""The newest offline-evaluation report: the ``replay.json`` that ``signalroute evaluate``
wrote most recently under the reports folder (``SIGNALROUTE_DASHBOARD_REPORTS``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPORT_NAME = "replay.json"
MAX_REPORT_BYTES = 5 * 1024 * 1024
"""A larger file is not read (a report is a few kilobytes)."""


def newest_report(folder: Path) -> dict[str, Any] | None:
    """The newest readable report in ``folder`` or below it, with where and when it was
    written (``path`` relative to ``folder``, ``written_at``); None when there is none.

    A report that cannot be read or parsed is skipped for an older one; the reason of the
    newest such failure is returned under ``skipped`` with the report found."""
    if not folder.is_dir():
        return None
    candidates = sorted(
        (p for p in folder.rglob(REPORT_NAME) if p.is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    skipped: str | None = None
    for path in candidates:
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
            report = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(report, dict) or not isinstance(report.get("candidates"), list):
                raise ValueError("not an offline-evaluation report (no 'candidates' list)")
        except (OSError, ValueError) as exc:
            skipped = skipped or f"{path.relative_to(folder)}: {exc}"
            continue
        written = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return {
            "path": str(path.relative_to(folder)),
            "written_at": written.isoformat(),
            "skipped": skipped,
            "report": report,
        }
    return None
