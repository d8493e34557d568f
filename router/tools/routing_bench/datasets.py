"""Adapters from the shared datasets to routing matrices (see ``../shared/data/README.md``).

* ``routerbench``: 11 models' real answers, correctness labels and billed cost; RouterBench's
  own train/test split. List prices are the demo pool's; the judge is billed as
  ``gpt-3.5-turbo-1106`` (see docs/benchmarks/index.md).
* ``bfcl``: 22 configurations' recorded tool calls and BFCL's verdicts, the functions offered
  sent as the request's ``tools`` (``router.tools.routing_bench.bfcl``).
* ``mmlu_pro``: 28-29 models' correctness on MMLU-Pro, no answers; a seeded 70/30 split;
  cost = (prompt_chars/4 * input price + output_chars/4 * output price) / 1e6 from
  ``prices.csv``, where the prompt is the question and its lettered options. Questions some
  model has no record of are left out. The judge is billed as ``gemini-1.5-flash-002``.

The data is read where it lies and never copied.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from features.errors import ConfigError
from router.pool import demo_pool
from router.tools.replay_pool.dataset import load_routerbench
from router.tools.routing_bench.bfcl import bfcl_matrix
from router.tools.routing_bench.matrix import Price, RoutingMatrix
from router.tools.routing_bench.tables import build_matrix, read_parquet_columns

DATASETS = ("routerbench", "mmlu_pro", "bfcl")
DEFAULT_DATA_ROOT = Path("../shared/data")
ROUTERBENCH_JUDGE = "gpt-3.5-turbo-1106"
MMLU_PRO_JUDGE = "gemini-1.5-flash-002"
OPTION_LETTERS = "ABCDEFGHIJKLMNOP"


def routerbench_matrix(folder: Path) -> RoutingMatrix:
    """RouterBench (its train/test split) as a matrix, with the recorded answers."""
    dataset = load_routerbench(folder)
    prices = {
        arm.name: Price(arm.input_usd_per_mtok, arm.output_usd_per_mtok) for arm in demo_pool().arms
    }

    def rows() -> Iterator[dict[str, Any]]:
        for record in dataset:
            for outcome in record.outcomes:
                yield {
                    "prompt_id": record.prompt_id,
                    "prompt": record.prompt,
                    "task": record.task,
                    "model": outcome.model,
                    "quality": outcome.correct,
                    "cost_usd": outcome.cost_usd,
                    "response": outcome.response,
                    "split": record.split,
                }

    return build_matrix(
        rows(),
        name="routerbench",
        judge_model=ROUTERBENCH_JUDGE,
        prices={m: prices.get(m) or _missing_price(m) for m in dataset.models},
        source=str(folder),
    )


def _missing_price(model: str) -> Price:
    raise ConfigError(f"the demo pool has no list price for RouterBench model {model}")


def mmlu_prompt(question: str, options: list[Any]) -> str:
    """The question and its options as the model saw them: ``A. ...`` lines."""
    lines = [question.strip(), "Options:"]
    lines += [f"{OPTION_LETTERS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join(lines)


def read_prices(path: Path) -> dict[str, Price]:
    """``prices.csv``: model, usd_per_mtok_input, usd_per_mtok_output."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return {
                row["model"]: Price(
                    float(row["usd_per_mtok_input"]), float(row["usd_per_mtok_output"])
                )
                for row in csv.DictReader(handle)
            }
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the price table: {exc}") from None


def mmlu_pro_matrix(
    folder: Path, *, split_seed: int = 0, test_fraction: float = 0.3
) -> RoutingMatrix:
    """MMLU-Pro as a matrix: correctness only, cost from the price table, seeded split."""
    for name in ("questions.parquet", "correctness_long.parquet", "prices.csv"):
        if not (folder / name).is_file():
            raise ConfigError(f"MMLU-Pro data not found: {folder / name} is missing")
    questions = read_parquet_columns(
        folder / "questions.parquet", ["question_id", "category", "question", "options"]
    )
    prompts = {
        str(qid): (mmlu_prompt(str(text), list(options)), str(category))
        for qid, category, text, options in zip(
            questions["question_id"],
            questions["category"],
            questions["question"],
            questions["options"],
            strict=True,
        )
    }
    outcomes = read_parquet_columns(
        folder / "correctness_long.parquet", ["question_id", "model", "correct", "output_chars"]
    )
    prices = read_prices(folder / "prices.csv")

    def rows() -> Iterator[dict[str, Any]]:
        for qid, model, correct, output_chars in zip(
            outcomes["question_id"],
            outcomes["model"],
            outcomes["correct"],
            outcomes["output_chars"],
            strict=True,
        ):
            prompt, category = prompts[str(qid)]
            price = prices.get(str(model)) or _no_price(str(model), folder)
            yield {
                "prompt_id": str(qid),
                "prompt": prompt,
                "task": category,
                "model": str(model),
                "quality": float(correct),
                "cost_usd": price.usd(len(prompt) / 4, float(output_chars or 0) / 4),
            }

    return build_matrix(
        rows(),
        name="mmlu_pro",
        test_fraction=test_fraction,
        split_seed=split_seed,
        judge_model=MMLU_PRO_JUDGE,
        prices=prices,
        source=str(folder),
    )


def _no_price(model: str, folder: Path) -> Price:
    raise ConfigError(f"{folder / 'prices.csv'} has no price for model {model}")


def load_dataset(
    name: str, root: Path = DEFAULT_DATA_ROOT, *, split_seed: int = 0
) -> RoutingMatrix:
    """The named shared dataset as a matrix; ConfigError when unknown or absent."""
    if name == "routerbench":
        return routerbench_matrix(root / "routerbench")
    if name == "mmlu_pro":
        return mmlu_pro_matrix(root / "mmlu_pro", split_seed=split_seed)
    if name == "bfcl":
        return bfcl_matrix(root / "bfcl")
    raise ConfigError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
