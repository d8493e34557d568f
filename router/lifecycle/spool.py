"""A durable local spool for journals the store could not take.

Each journal is one JSON file, written to a temporary name, flushed to disk and renamed, so
a crash leaves either the whole file or none of it. Files are replayed oldest first.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from features.embedding import Vector
from router.lifecycle.journal import (
    Completed,
    DecisionRow,
    Delegated,
    Failed,
    Journal,
    Outcome,
    RequestRow,
    RewardRow,
)

OUTCOMES: dict[str, type[Completed] | type[Failed] | type[Delegated]] = {
    kind.__name__: kind for kind in (Completed, Failed, Delegated)
}


class JournalSpool:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, journal: Journal, outcome: Outcome, embedding: Vector | None) -> Path:
        document: dict[str, Any] = {
            "request_id": journal.request_id,
            "tenant": journal.tenant,
            "user_id": journal.user_id,
            "request": asdict(journal.request) if journal.request is not None else None,
            "decisions": [
                {**asdict(row), "context": dict(row.context)} for row in journal.decisions
            ],
            "rewards": [asdict(row) for row in journal.rewards],
            "outcome": {"kind": type(outcome).__name__, **asdict(outcome)},
            "embedding": embedding.tolist() if embedding is not None else None,
        }
        target = self._folder / f"{journal.request_id}.json"
        temporary = target.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target

    def entries(self) -> list[Path]:
        """Spooled journals, oldest first."""
        return sorted(self._folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))

    def count(self) -> int:
        return sum(1 for _ in self._folder.glob("*.json"))

    def load(self, path: Path) -> tuple[Journal, Outcome, Vector | None]:
        document = json.loads(path.read_text(encoding="utf-8"))
        request = document["request"]
        journal = Journal(
            request_id=document["request_id"],
            tenant=document["tenant"],
            user_id=document["user_id"],
            decisions=[
                DecisionRow(**{**row, "arms": tuple(row["arms"])}) for row in document["decisions"]
            ],
            rewards=[RewardRow(**row) for row in document["rewards"]],
            request=None
            if request is None
            else RequestRow(**{**request, "messages": tuple(request["messages"])}),
        )
        outcome_fields = dict(document["outcome"])
        kind = outcome_fields.pop("kind")
        outcome: Outcome = OUTCOMES[kind](**outcome_fields)
        embedding = document["embedding"]
        vector = np.asarray(embedding, dtype=np.float32) if embedding is not None else None
        return journal, outcome, vector

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def set_aside(self, path: Path) -> Path:
        """Keep a journal the store refused beside the spool (``NAME.json.refused``), out of
        the entries replayed; returns where it is now."""
        kept = path.with_name(f"{path.name}.refused")
        os.replace(path, kept)
        return kept
