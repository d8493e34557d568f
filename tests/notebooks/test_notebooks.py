"""The notebooks in ``notebooks/`` run top to bottom in a fresh kernel, in minutes, and are
kept in git without outputs.

Each notebook starts its own service or benchmark (embedded Postgres in a temporary folder)
on the shared RouterBench data; without the data they are skipped, saying so. Run times are
printed (``pytest -s``) and held to a budget.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from router.settings import ReplaySettings

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "routerbench"
CELL_TIMEOUT_S = 600
BUDGET_S = 240.0
"""Per notebook; they aim at under two minutes (about one on an idle two-core machine)."""


def test_there_are_notebooks() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert names == [
        "01_routing_tour.ipynb",
        "02_policy_inspection.ipynb",
        "03_learning_and_cost.ipynb",
        "04_replay.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_a_question(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook checks need the analysis extra")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs: clear them"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"
    first = notebook.cells[0]
    assert first.cell_type == "markdown", f"{path.name} must open with its question"
    assert "**Question" in first.source, f"{path.name} must state its question at the top"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.fixture(scope="module")
def routerbench() -> Path:
    path = ReplaySettings().data or DEFAULT_DATA
    if not (path / "mbpp_test.csv").is_file():
        pytest.skip(
            f"RouterBench data not found at {path}: the notebooks need it; set "
            "SIGNALROUTE_REPLAY_DATA to the folder holding {arc_challenge,mbpp,winograde}_"
            "{train,test}.csv"
        )
    return path


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path: Path, routerbench: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="running notebooks needs the analysis extra")
    nbclient = pytest.importorskip("nbclient", reason="running notebooks needs the analysis extra")
    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    try:
        kernelspec.KernelSpecManager().get_kernel_spec("python3")
    except kernelspec.NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel: install the analysis extra (ipykernel)")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",  # jupyter_client starts it with this interpreter
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    print(f"{path.name}: {seconds:.0f} s")
    assert seconds < BUDGET_S, f"{path.name} took {seconds:.0f} s (budget {BUDGET_S:g} s)"
