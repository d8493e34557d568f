"""Routing matrices as long tables: one row per (prompt, model), in Parquet, CSV or JSONL.

Columns: ``prompt_id, prompt, task, model, quality`` (0..1), ``cost_usd``, and optionally
``response``, ``latency_ms`` and ``split`` (``train`` / ``test``; without it a seeded split
sends ``test_fraction`` of the prompts to test). A prompt that some model has no row for is
left out (counted in ``RoutingMatrix.dropped``). Parquet needs ``pyarrow`` (the ``analysis``
extra), imported only when a Parquet file is read or written.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from features.errors import ConfigError
from router.tools.routing_bench.matrix import (
    Price,
    Prompt,
    RoutingMatrix,
    Split,
    assign_splits,
    default_judge,
    derive_prices,
)

REQUIRED = ("prompt_id", "prompt", "task", "model", "quality", "cost_usd")
OPTIONAL = ("response", "latency_ms", "split")
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl"}


def table_format(path: Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` from the file name; ConfigError otherwise."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"{path}: unknown routing-matrix format {path.suffix!r}: use .parquet, .csv or .jsonl"
        )
    return kind


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "reading or writing Parquet needs pyarrow: pip install 'signalroute[analysis]' "
            "(or use a .csv or .jsonl matrix)"
        ) from None
    return pq


def read_parquet_columns(path: Path, columns: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """The columns of a Parquet file as Python lists (ConfigError when unreadable)."""
    pq = _pyarrow()
    try:
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read Parquet: {exc}") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a long table, as dicts (ConfigError when unreadable)."""
    kind = table_format(path)
    if not path.is_file():
        raise ConfigError(f"routing matrix not found: {path}")
    if kind == "parquet":
        columns = read_parquet_columns(path)
        names = list(columns)
        count = len(columns[names[0]]) if names else 0
        return [{name: columns[name][i] for name in names} for i in range(count)]
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if kind == "csv":
                return [dict(row) for row in csv.DictReader(handle)]
            rows = []
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    value = json.loads(line)
                    if not isinstance(value, dict):
                        raise ConfigError(f"{path}:{number}: expected a JSON object per line")
                    rows.append(value)
            return rows
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the routing matrix: {exc}") from None


def _number(value: Any, where: str, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {column} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: {column} must be finite, got {value!r}")
    return number


def build_matrix(
    rows: Iterable[Mapping[str, Any]],
    *,
    name: str,
    test_fraction: float = 0.3,
    split_seed: int = 0,
    judge_model: str | None = None,
    prices: Mapping[str, Price] | None = None,
    source: str = "matrix",
) -> RoutingMatrix:
    """A ``RoutingMatrix`` from long-table rows (see the module contract).

    Raises ConfigError naming the row and column of the first problem.
    """
    prompts: dict[str, dict[str, Any]] = {}
    cells: dict[tuple[str, str], tuple[float, float, str | None, float | None]] = {}
    models: dict[str, None] = {}
    has_response = has_latency = False
    for index, row in enumerate(rows):
        where = f"{source} row {index + 1}"
        absent = [c for c in REQUIRED if row.get(c) is None or row.get(c) == ""]
        if absent:
            raise ConfigError(f"{where}: missing {', '.join(absent)}")
        pid, model = str(row["prompt_id"]), str(row["model"])
        quality = _number(row["quality"], where, "quality")
        if not 0.0 <= quality <= 1.0:
            raise ConfigError(f"{where}: quality must lie in [0, 1], got {quality}")
        cost = _number(row["cost_usd"], where, "cost_usd")
        if cost < 0:
            raise ConfigError(f"{where}: cost_usd must be >= 0, got {cost}")
        response = row.get("response")
        latency = row.get("latency_ms")
        has_response |= response is not None
        has_latency |= latency not in (None, "")
        split = row.get("split") or None
        if split is not None and split not in ("train", "test"):
            raise ConfigError(f"{where}: split must be train or test, got {split!r}")
        info = {"prompt": str(row["prompt"]), "task": str(row["task"]), "split": split}
        seen = prompts.setdefault(pid, info)
        if seen != info:
            raise ConfigError(f"{where}: prompt {pid} has another prompt, task or split above")
        if (pid, model) in cells:
            raise ConfigError(f"{where}: a second row for prompt {pid} and model {model}")
        cells[(pid, model)] = (
            quality,
            cost,
            None if response is None else str(response),
            _number(latency, where, "latency_ms") if latency not in (None, "") else None,
        )
        models[model] = None
    names = tuple(models)
    complete = [pid for pid in prompts if all((pid, m) in cells for m in names)]
    if not complete:
        raise ConfigError(f"{source}: no prompt has a row for every model")
    given = {pid: prompts[pid]["split"] for pid in complete}
    if any(s is None for s in given.values()) and any(s is not None for s in given.values()):
        raise ConfigError(f"{source}: split is set for some prompts and not for others")
    splits: Mapping[str, Split] = (
        {pid: s for pid, s in given.items() if s is not None}
        if all(s is not None for s in given.values())
        else assign_splits(complete, test_fraction=test_fraction, seed=split_seed)
    )
    prompt_list = tuple(
        Prompt(pid, prompts[pid]["prompt"], prompts[pid]["task"], splits[pid]) for pid in complete
    )
    grid = [[cells[(pid, m)] for m in names] for pid in complete]
    quality_array = np.array([[c[0] for c in line] for line in grid], dtype=np.float64)
    cost_array = np.array([[c[1] for c in line] for line in grid], dtype=np.float64)
    responses = tuple(tuple(c[2] or "" for c in line) for line in grid) if has_response else None
    latency = (
        np.array([[c[3] or 0.0 for c in line] for line in grid], dtype=np.float64)
        if has_latency
        else None
    )
    if not any(p.split == "train" for p in prompt_list) or not any(
        p.split == "test" for p in prompt_list
    ):
        raise ConfigError(f"{source}: both the train and the test split need prompts")
    train = np.array([p.split == "train" for p in prompt_list])
    judge = judge_model or default_judge(names, quality_array[train], cost_array[train])
    if judge not in names:
        raise ConfigError(f"{source}: the judge model {judge!r} is not one of the matrix's models")
    return RoutingMatrix(
        name=name,
        models=names,
        prompts=prompt_list,
        quality=quality_array,
        cost_usd=cost_array,
        prices=dict(prices)
        if prices is not None
        else derive_prices(names, prompt_list, cost_array, responses),
        judge_model=judge,
        responses=responses,
        latency_ms=latency,
        dropped=len(prompts) - len(complete),
    )


def load_matrix(
    path: Path,
    *,
    test_fraction: float = 0.3,
    split_seed: int = 0,
    judge_model: str | None = None,
) -> RoutingMatrix:
    """Read a long-table routing matrix (Parquet, CSV or JSONL)."""
    return build_matrix(
        read_rows(path),
        name=path.stem,
        test_fraction=test_fraction,
        split_seed=split_seed,
        judge_model=judge_model,
        source=str(path),
    )


def matrix_rows(matrix: RoutingMatrix) -> list[dict[str, Any]]:
    """The matrix as long-table rows (with ``split``; ``response`` when text was recorded)."""
    rows: list[dict[str, Any]] = []
    for i, prompt in enumerate(matrix.prompts):
        for j, model in enumerate(matrix.models):
            row: dict[str, Any] = {
                "prompt_id": prompt.prompt_id,
                "prompt": prompt.text,
                "task": prompt.task,
                "model": model,
                "quality": float(matrix.quality[i, j]),
                "cost_usd": float(matrix.cost_usd[i, j]),
                "split": prompt.split,
            }
            if matrix.responses is not None:
                row["response"] = matrix.responses[i][j]
            if matrix.latency_ms is not None:
                row["latency_ms"] = float(matrix.latency_ms[i, j])
            rows.append(row)
    return rows


def save_matrix(matrix: RoutingMatrix, path: Path) -> None:
    """Write the matrix as a long table; the format follows the file name."""
    kind = table_format(path)
    rows = matrix_rows(matrix)
    if kind == "parquet":
        pq = _pyarrow()
        import pyarrow as pa

        pq.write_table(pa.Table.from_pylist(rows), path)
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        if kind == "jsonl":
            for row in rows:
                handle.write(json.dumps(row) + "\n")
            return
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
