import csv
import json
from pathlib import Path

import numpy as np
import pytest

from features.errors import ConfigError
from router.pool import demo_pool
from router.tools.replay_pool.dataset import EXPECTED_FILES
from router.tools.routing_bench.datasets import mmlu_pro_matrix, mmlu_prompt, routerbench_matrix
from router.tools.routing_bench.matrix import Price, placeholder
from router.tools.routing_bench.tables import build_matrix, load_matrix, matrix_rows, save_matrix
from tests.router.tools.routing_bench.synthetic import MODELS, synthetic_matrix, synthetic_rows


def test_long_rows_become_a_matrix_with_their_split() -> None:
    matrix = synthetic_matrix(20)
    assert matrix.models == MODELS
    assert len(matrix.rows("train")) == 14
    assert len(matrix.rows("test")) == 6
    strong = matrix.column("strong")
    assert matrix.quality[:, strong].tolist() == [1.0] * 20
    assert matrix.best_single("train") == strong
    assert matrix.response(0, 0) == "cheap says item 0 is right."
    # Prices are derived from the recorded costs when none are given.
    assert matrix.prices["strong"].input_usd_per_mtok > matrix.prices["cheap"].input_usd_per_mtok


def test_without_a_split_column_the_split_is_seeded() -> None:
    rows = synthetic_rows(40, with_split=False)
    first = build_matrix(rows, name="s", split_seed=3)
    again = build_matrix(rows, name="s", split_seed=3)
    other = build_matrix(rows, name="s", split_seed=4)
    assert len(first.rows("test")) == 12
    assert first.rows("test").tolist() == again.rows("test").tolist()
    assert first.rows("test").tolist() != other.rows("test").tolist()


def test_incomplete_prompts_are_dropped_and_counted() -> None:
    rows = [r for r in synthetic_rows(20) if not (r["prompt_id"] == "p3" and r["model"] == "mid")]
    matrix = build_matrix(rows, name="s")
    assert len(matrix.prompts) == 19
    assert matrix.dropped == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quality": 1.5}, "quality must lie in"),
        ({"cost_usd": -1}, "cost_usd must be >= 0"),
        ({"quality": "n/a"}, "quality must be a number"),
        ({"prompt": None}, "missing prompt"),
        ({"split": "dev"}, "split must be train or test"),
    ],
)
def test_bad_rows_are_named(change: dict[str, object], message: str) -> None:
    rows = synthetic_rows(10)
    rows[4] = rows[4] | change
    with pytest.raises(ConfigError, match=message):
        build_matrix(rows, name="s", source="m.csv")


def test_unknown_judge_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="judge model 'gpt-9'"):
        build_matrix(synthetic_rows(10), name="s", judge_model="gpt-9")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_round_trip_through_every_format(tmp_path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    matrix = synthetic_matrix(20)
    path = tmp_path / f"matrix{suffix}"
    save_matrix(matrix, path)
    loaded = load_matrix(path, judge_model="mid")
    assert loaded.name == "matrix"
    assert [p.prompt_id for p in loaded.prompts] == [p.prompt_id for p in matrix.prompts]
    np.testing.assert_allclose(loaded.quality, matrix.quality)
    np.testing.assert_allclose(loaded.cost_usd, matrix.cost_usd)
    assert loaded.responses == matrix.responses
    assert loaded.rows("test").tolist() == matrix.rows("test").tolist()


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"use \.parquet, \.csv or \.jsonl"):
        load_matrix(tmp_path / "m.xlsx")
    with pytest.raises(ConfigError, match="not found"):
        load_matrix(tmp_path / "m.csv")


def test_matrix_without_text_answers_with_placeholders() -> None:
    rows = [{k: v for k, v in r.items() if k != "response"} for r in synthetic_rows(10)]
    matrix = build_matrix(rows, name="s")
    assert matrix.responses is None
    assert matrix.response(2, 1) == placeholder("mid", "p2")
    assert "response" not in matrix_rows(matrix)[0]


def _routerbench_folder(folder: Path) -> None:
    """Six tiny CSVs in RouterBench's format: two prompts per file, the demo pool's models."""
    models = [arm.name for arm in demo_pool().arms]
    for index, name in enumerate(sorted(EXPECTED_FILES)):
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            header = ["sample_id", "prompt", "eval_name"]
            for model in models:
                header += [model, f"{model}|model_response", f"{model}|total_cost"]
            writer.writerow([*header, "oracle_model_to_route_to"])
            for k in range(2):
                row = [f"s{index}-{k}", repr([f"Prompt {index}-{k}?"]), name.split("_")[0]]
                for j, _ in enumerate(models):
                    row += [str((j + k) % 2), repr([f"answer {j}"]), str(0.001 * (j + 1))]
                writer.writerow([*row, models[0]])


def test_routerbench_adapter_keeps_its_split_prices_and_judge(tmp_path: Path) -> None:
    _routerbench_folder(tmp_path)
    matrix = routerbench_matrix(tmp_path)
    assert len(matrix.prompts) == 12
    assert len(matrix.rows("train")) == 6
    assert len(matrix.rows("test")) == 6
    assert matrix.judge_model == "gpt-3.5-turbo-1106"
    assert matrix.prices["gpt-4-1106-preview"] == Price(10.0, 30.0)
    assert matrix.response(0, 0) == "answer 0"


def test_mmlu_pro_adapter_prices_prompts_and_drops_incomplete(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    questions = [
        {
            "question_id": q,
            "category": "math",
            "src": "x",
            "question": f"What is {q}+{q}?",
            "options": [str(q), str(2 * q)],
            "answer": "B",
        }
        for q in range(10)
    ]
    pq.write_table(pa.Table.from_pylist(questions), tmp_path / "questions.parquet")
    outcomes = [
        {
            "question_id": q,
            "category": "math",
            "model": model,
            "pred": "B",
            "correct": int(model == "big" or q % 2 == 0),
            "output_chars": 40,
        }
        for q in range(10)
        for model in ("small", "big", "gemini-1.5-flash-002")
        if not (q == 9 and model == "small")
    ]
    pq.write_table(pa.Table.from_pylist(outcomes), tmp_path / "correctness_long.parquet")
    (tmp_path / "prices.csv").write_text(
        "model,usd_per_mtok_input,usd_per_mtok_output,basis\n"
        "small,0.2,0.2,x\nbig,2.0,8.0,x\ngemini-1.5-flash-002,0.075,0.3,x\n"
    )
    matrix = mmlu_pro_matrix(tmp_path, split_seed=1)
    assert len(matrix.prompts) == 9
    assert matrix.dropped == 1
    assert len(matrix.rows("test")) == 3
    prompt = mmlu_prompt("What is 1+1?", ["1", "2"])
    assert prompt == "What is 1+1?\nOptions:\nA. 1\nB. 2"
    row = next(i for i, p in enumerate(matrix.prompts) if p.prompt_id == "1")
    big = matrix.column("big")
    assert matrix.cost_usd[row, big] == pytest.approx((len(prompt) / 4 * 2.0 + 10 * 8.0) / 1e6)
    assert matrix.responses is None
    assert matrix.judge_model == "gemini-1.5-flash-002"
    json.dumps([p.prompt_id for p in matrix.prompts])
