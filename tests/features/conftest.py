"""Fixtures of BFCL's real recorded tool calls (see ``bfcl_records``), loaded once a session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.features.bfcl_records import DEFAULT_BFCL, read_outputs, read_questions


@pytest.fixture(scope="session")
def bfcl_dir() -> Path:
    configured = os.environ.get("SIGNALROUTE_REPLAY_BFCL_DATA")
    path = Path(configured) if configured else DEFAULT_BFCL
    if not (path / "outputs.tsv").is_file():
        pytest.skip(
            f"BFCL data not found at {path}: set SIGNALROUTE_REPLAY_BFCL_DATA to the folder "
            "holding outputs.tsv and questions/"
        )
    return path


@pytest.fixture(scope="session")
def questions(bfcl_dir: Path) -> dict[str, dict[str, Any]]:
    return read_questions(bfcl_dir)


@pytest.fixture(scope="session")
def outputs(bfcl_dir: Path) -> list[dict[str, str]]:
    return read_outputs(bfcl_dir)
