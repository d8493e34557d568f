"""The ``notebooks`` marker: executing the notebooks takes minutes, so a quick local run can
leave them out with ``pytest -m "not notebooks"`` (CI runs everything)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "notebooks: executes a notebook (minutes)")
