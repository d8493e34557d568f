"""Loading RouterBench: counts, the merged duplicate rows, and the README's test-split facts."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from statistics import mean

import pytest

from features.errors import ConfigError
from router.tools.replay_pool.dataset import (
    EXPECTED_FILES,
    ReplayDataset,
    ReplayRecord,
    load_routerbench,
)

MODELS = {
    "gpt-4-1106-preview",
    "gpt-3.5-turbo-1106",
    "claude-v1",
    "claude-v2",
    "claude-instant-v1",
    "meta/llama-2-70b-chat",
    "meta/code-llama-instruct-34b-chat",
    "mistralai/mixtral-8x7b-chat",
    "mistralai/mistral-7b-chat",
    "WizardLM/WizardLM-13B-V1.2",
    "zero-one-ai/Yi-34B-Chat",
}
GPT4 = "gpt-4-1106-preview"
GPT35 = "gpt-3.5-turbo-1106"


def accuracy(records: tuple[ReplayRecord, ...], model: str) -> float:
    return mean(record.outcome(model).correct for record in records)


def test_loads_every_prompt_of_every_model(replay_dataset: ReplayDataset) -> None:
    assert len(replay_dataset) == 3164
    assert set(replay_dataset.models) == MODELS
    assert len(replay_dataset.in_split("train")) == 2217
    assert len(replay_dataset.in_split("test")) == 947
    assert {record.task for record in replay_dataset} == {"arc-challenge", "mbpp", "winogrande"}
    for record in replay_dataset:
        assert record.prompt.strip()
        assert [o.model for o in record.outcomes] == list(replay_dataset.models)
        assert all(o.correct in (0.0, 1.0) and o.cost_usd >= 0.0 for o in record.outcomes)


def test_loads_in_seconds(replay_data_dir: Path) -> None:
    """About 0.7 s on the development machine; the bound leaves room for a busy one."""
    started = time.perf_counter()
    load_routerbench(replay_data_dir)
    assert time.perf_counter() - started < 5.0


def test_responses_are_the_first_element_of_the_recorded_list(
    replay_dataset: ReplayDataset,
) -> None:
    record = replay_dataset.get("mbpp.dev.1")
    assert record.prompt == "Write a python function to identify non-prime numbers."
    assert record.split == "test"
    assert record.outcome(GPT4).response.startswith("Here's a Python function")
    assert not record.outcome(GPT4).response.startswith("['")


def test_split_rows_of_one_sample_are_merged(replay_dataset: ReplayDataset) -> None:
    """Those 14 ARC ids have one row with ten labels and one with gpt-3.5's label only, on
    the prompt written twice."""
    assert len(replay_dataset.merged) == 14
    record = replay_dataset.get("arc-challenge.val.136")
    assert record.split == "test"
    question = record.prompt.split("\n\n")[-1]
    assert record.prompt.count(question) == 1
    assert record.outcome(GPT35).cost_usd == pytest.approx(0.00095)
    assert record.outcome(GPT4).cost_usd == pytest.approx(0.00477)


def test_test_split_matches_the_data_readme(replay_dataset: ReplayDataset) -> None:
    test = replay_dataset.in_split("test")
    by_model = {model: accuracy(test, model) for model in replay_dataset.models}
    assert max(by_model, key=by_model.__getitem__) == GPT4
    assert by_model[GPT4] == pytest.approx(0.880, abs=5e-4)
    # The README's $0.00503 and oracle 0.974 count the 7 split rows of the test files twice.
    assert mean(r.outcome(GPT4).cost_usd for r in test) == pytest.approx(0.00500, abs=5e-6)
    oracle = mean(max(o.correct for o in r.outcomes) for r in test)
    assert oracle == pytest.approx(0.976, abs=5e-4)


@pytest.mark.parametrize(
    ("task", "best", "expected"),
    [("arc-challenge", GPT4, 0.957), ("mbpp", GPT35, 0.688), ("winogrande", GPT4, 0.855)],
)
def test_best_model_per_task_on_the_test_split(
    replay_dataset: ReplayDataset, task: str, best: str, expected: float
) -> None:
    records = tuple(r for r in replay_dataset.in_split("test") if r.task == task)
    top = max(accuracy(records, model) for model in replay_dataset.models)
    assert accuracy(records, best) == pytest.approx(top)
    assert top == pytest.approx(expected, abs=5e-4)


# --- errors, on small synthetic files ------------------------------------------------------


def write_tiny_routerbench(folder: Path, *, prompt_cell: str = "['What is 1+1?']") -> None:
    """Six one-row CSVs in the RouterBench layout, with two models."""
    models = ["m1", "m2"]
    header = ["", "sample_id", "prompt", "eval_name", *models]
    header += [f"{m}|model_response" for m in models] + [f"{m}|total_cost" for m in models]
    header.append("oracle_model_to_route_to")
    for index, name in enumerate(EXPECTED_FILES):
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerow(
                [index, f"s{index}", prompt_cell, "toy", 1.0, 0.0, "['2']", "['3']", 0.1, 0.2, "m1"]
            )


def test_tiny_files_load(tmp_path: Path) -> None:
    write_tiny_routerbench(tmp_path)
    dataset = load_routerbench(tmp_path)
    assert dataset.models == ("m1", "m2")
    assert len(dataset) == 6
    record = dataset.records[0]
    assert (record.prompt, record.task) == ("What is 1+1?", "toy")
    assert record.outcome("m2").response == "3"
    assert record.outcome("m2").correct == 0.0
    assert record.outcome("m2").cost_usd == 0.2


def test_missing_folder_says_what_to_set(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="SIGNALROUTE_REPLAY_DATA") as caught:
        load_routerbench(missing)
    assert str(missing) in caught.value.message
    assert "\n" not in caught.value.message
    with pytest.raises(ConfigError, match="replay data not found: set SIGNALROUTE_REPLAY_DATA"):
        load_routerbench(None)


def test_missing_files_are_named(tmp_path: Path) -> None:
    write_tiny_routerbench(tmp_path)
    (tmp_path / "mbpp_test.csv").unlink()
    with pytest.raises(ConfigError, match=r"missing mbpp_test\.csv"):
        load_routerbench(tmp_path)


def test_a_bad_cell_is_located(tmp_path: Path) -> None:
    write_tiny_routerbench(tmp_path, prompt_cell="not a list")
    with pytest.raises(ConfigError, match=r"arc_challenge_test\.csv:2 prompt"):
        load_routerbench(tmp_path)
