"""The recorded RouterBench rows: prompts, and each model's real answer, label and cost.

The data is read from the six CSVs ``{arc_challenge,mbpp,winograde}_{train,test}.csv`` (see
``../shared/data/README.md``); it is never copied into the project. Only the standard ``csv``
module is used, so the service needs no pandas.

Quirk of the source: 14 ARC ``sample_id``s appear in two rows (sometimes in two files). One row
holds the prompt and every label but gpt-3.5-turbo-1106's; the other holds the prompt twice over
and only gpt-3.5-turbo-1106's label (its response and cost are for that doubled prompt). The
two rows are merged into one record, prompt and split from the first kind, each model's outcome
from the row that labels it: 3,164 records, 2,217 train and 947 test. (The README's 2,225 / 953
count rows.)
"""

from __future__ import annotations

import ast
import csv
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from features.errors import ConfigError

Split = Literal["train", "test"]

TASK_FILES = ("arc_challenge", "mbpp", "winograde")
SPLITS: tuple[Split, ...] = ("train", "test")
EXPECTED_FILES = tuple(f"{task}_{split}.csv" for task in TASK_FILES for split in SPLITS)

_FIXED_COLUMNS = frozenset({"", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"})
_RESPONSE = "|model_response"
_COST = "|total_cost"
_FIELD_SIZE_LIMIT = 1 << 30


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """What one model did on one prompt: its answer, its label and what it was billed.

    ``correct`` is 1.0 (right) or 0.0 (wrong); RouterBench's labels on these tasks are binary.
    """

    model: str
    response: str
    correct: float
    cost_usd: float


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One recorded prompt and the outcome of every model on it (in ``ReplayDataset.models``
    order)."""

    prompt_id: str
    prompt: str
    task: str
    split: Split
    outcomes: tuple[ModelOutcome, ...]

    def outcome(self, model: str) -> ModelOutcome:
        """The outcome of ``model``; KeyError for a model that was not recorded."""
        for outcome in self.outcomes:
            if outcome.model == model:
                return outcome
        raise KeyError(model)


@dataclass(frozen=True)
class ReplayDataset:
    """Every recorded prompt, in file order (sorted file names, then row order).

    ``merged`` holds the ids whose record was assembled from several source rows.
    """

    models: tuple[str, ...]
    records: tuple[ReplayRecord, ...]
    merged: tuple[str, ...] = ()
    _by_id: Mapping[str, ReplayRecord] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {record.prompt_id: record for record in self.records}
        if len(by_id) != len(self.records):
            raise ValueError("prompt ids must be unique")
        object.__setattr__(self, "_by_id", by_id)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ReplayRecord]:
        return iter(self.records)

    def get(self, prompt_id: str) -> ReplayRecord:
        """The record with this id; KeyError when there is none."""
        return self._by_id[prompt_id]

    def in_split(self, split: Split) -> tuple[ReplayRecord, ...]:
        """The records of one split, in dataset order."""
        return tuple(record for record in self.records if record.split == split)


def _missing_data(path: Path | None, detail: str = "") -> ConfigError:
    names = ",".join(TASK_FILES)
    where = "" if path is None else f" at {path}"
    return ConfigError(
        f"replay data not found{where}{detail}: set SIGNALROUTE_REPLAY_DATA to a folder holding "
        f"the RouterBench CSVs ({{{names}}}_{{train,test}}.csv)"
    )


def _models_of(columns: list[str], source: Path) -> tuple[str, ...]:
    models = tuple(c for c in columns if c not in _FIXED_COLUMNS and "|" not in c)
    missing = [
        f"{model}{suffix}"
        for model in models
        for suffix in (_RESPONSE, _COST)
        if f"{model}{suffix}" not in columns
    ]
    required = {"sample_id", "prompt", "eval_name"} - set(columns)
    if missing or required or not models:
        lacking = sorted(required) + missing or ["model columns"]
        raise ConfigError(f"{source}: not a RouterBench CSV (missing {', '.join(lacking)})")
    return models


def _string_list(cell: str, where: str) -> list[str]:
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise ConfigError(f"{where}: expected a Python-literal list of strings")
    return value


def _number(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {cell[:40]!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {cell!r}")
    return value


def _label(cell: str, where: str) -> float:
    value = _number(cell, where)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: a correctness label must lie in [0, 1], got {cell!r}")
    return value


@dataclass(frozen=True, slots=True)
class _Row:
    """One CSV row: a record, or a fragment of one, with the outcomes it labels."""

    prompt_id: str
    prompt: str
    task: str
    split: Split
    outcomes: Mapping[str, ModelOutcome]


def _read_file(
    source: Path, split: Split, models: tuple[str, ...] | None
) -> tuple[tuple[str, ...], list[_Row]]:
    """The models of one CSV (checked against ``models`` when given) and its rows."""
    rows: list[_Row] = []
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        found = _models_of(list(reader.fieldnames or ()), source)
        if models is not None and set(found) != set(models):
            raise ConfigError(f"{source}: its models differ from the other files'")
        order = models or found
        for row in reader:
            where = f"{source.name}:{reader.line_num}"
            outcomes = {
                model: ModelOutcome(
                    model=model,
                    response=(_string_list(row[model + _RESPONSE], f"{where} {model}") or [""])[0],
                    correct=_label(row[model], f"{where} {model}"),
                    cost_usd=_number(row[model + _COST], f"{where} {model}{_COST}"),
                )
                for model in order
                if row[model]
            }
            prompt = "\n".join(_string_list(row["prompt"], f"{where} prompt"))
            rows.append(_Row(row["sample_id"], prompt, row["eval_name"], split, outcomes))
    return order, rows


def _merge(prompt_id: str, fragments: list[_Row], models: tuple[str, ...]) -> ReplayRecord:
    """One record from the rows sharing a ``sample_id``.

    The row labelling the most models gives the prompt, task and split; each model's outcome
    comes from whichever row labels it (that row's own response and cost).
    """
    main = max(fragments, key=lambda fragment: len(fragment.outcomes))
    outcomes: list[ModelOutcome] = []
    for model in models:
        source = next((f for f in (main, *fragments) if model in f.outcomes), None)
        if source is None:
            raise ConfigError(f"sample_id {prompt_id}: no correctness label for {model}")
        outcomes.append(source.outcomes[model])
    return ReplayRecord(prompt_id, main.prompt, main.task, main.split, tuple(outcomes))


def load_routerbench(path: Path | None) -> ReplayDataset:
    """Load the six RouterBench CSVs under ``path`` (about a second).

    Raises ConfigError, with one line saying what to fix, when ``path`` is None or is not a
    folder holding all six files, or when a file is not in the expected format.
    """
    if path is None:
        raise _missing_data(None)
    if not path.is_dir():
        raise _missing_data(path)
    absent = [name for name in EXPECTED_FILES if not (path / name).is_file()]
    if absent:
        raise _missing_data(path, f" (missing {', '.join(absent)})")
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_SIZE_LIMIT))
    models: tuple[str, ...] | None = None
    by_id: dict[str, list[_Row]] = {}
    for name in sorted(EXPECTED_FILES):
        split: Split = "test" if name.endswith("_test.csv") else "train"
        models, rows = _read_file(path / name, split, models)
        for row in rows:
            by_id.setdefault(row.prompt_id, []).append(row)
    assert models is not None
    records = tuple(_merge(prompt_id, rows, models) for prompt_id, rows in by_id.items())
    merged = tuple(prompt_id for prompt_id, rows in by_id.items() if len(rows) > 1)
    return ReplayDataset(models=models, records=records, merged=merged)
