"""The BFCL adapter: a small folder in BFCL's formats, and the real data when present."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from router.tools.replay_pool.bfcl import load_bfcl
from router.tools.routing_bench.bfcl import (
    BFCL_JUDGE,
    bfcl_matrix,
    hashed_split,
    offered_tools,
    tool_check_rates,
    write_tool_checks,
)
from router.tools.routing_bench.datasets import DATASETS, load_dataset
from router.tools.routing_bench.learned import (
    HOLDOUT_FRACTION,
    TENANT,
    LearnedRunner,
    LearnedSpec,
    RunSettings,
)
from store import decisions as decision_log
from store import rewards as reward_log
from store.database import Database

REPO_ROOT = Path(__file__).resolve().parents[4]
SHARED_BFCL = REPO_ROOT.parent / "shared" / "data" / "bfcl"

FUNCTION = {
    "name": "math.area",
    "description": "Area of a rectangle.",
    "parameters": {
        "type": "dict",
        "properties": {"width": {"type": "float"}, "height": {"type": "integer"}},
        "required": ["width", "height"],
    },
}
MODELS = (BFCL_JUDGE, "tidy-FC", "meta-llama_Meta-Llama-3-8B-Instruct")
OUTPUT_COLUMNS = (
    "prompt_id, category, model, correct, error_type, result, input_tokens, output_tokens, "
    "latency_s"
).split(", ")


def _answer(model: str, i: int) -> dict[str, Any]:
    """The judge's model answers in Python syntax, ``tidy-FC`` natively, and Llama writes
    broken ``<tool_call>`` JSON on odd prompts (still marked correct, so only the tool-call
    checks can tell)."""
    if model == BFCL_JUDGE:
        result, tokens = f"[math.area(width={i}.5, height={i})]", ("100", "20")
    elif model == "tidy-FC":
        result = json.dumps([{"math_area": json.dumps({"width": i + 0.5, "height": i})}])
        tokens = ("120", "15")
    else:
        flag = "True" if i % 2 else "true"
        result = (
            f'<tool_call>{{"arguments": {{"width": {i}.5, "height": {i}, "exact": {flag}}}, '
            f'"name": "math_area"}}</tool_call>'
        )
        tokens = ("", "")
    return {
        "model": model,
        "correct": "1" if model != "tidy-FC" or i % 3 else "0",
        "error_type": "",
        "result": json.dumps(result),
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "latency_s": "0.5" if tokens[0] else "",
    }


def write_bfcl(folder: Path, n_prompts: int = 40) -> Path:
    """A BFCL folder: ``n_prompts`` simple prompts (the last repeats the first's question)."""
    (folder / "questions").mkdir(parents=True)
    questions = [
        {
            "id": f"simple_{i}",
            "question": f"Area of a {i}.5 by {i} rectangle?",
            "function": FUNCTION,
        }
        for i in range(n_prompts - 1)
    ]
    questions.append({**questions[0], "id": f"simple_{n_prompts - 1}"})
    path = folder / "questions" / "gorilla_openfunctions_v1_test_simple.json"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    with (folder / "outputs.tsv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=OUTPUT_COLUMNS, delimiter="\t")
        writer.writeheader()
        for i in range(n_prompts):
            for model in MODELS:
                writer.writerow(
                    {"prompt_id": f"simple_{i}", "category": "simple", **_answer(model, i)}
                )
    prices = {
        "INPUT_PRICE_PER_MILLION_TOKEN": {BFCL_JUDGE: 0.15, "tidy-FC": 2.5},
        "OUTPUT_PRICE_PER_MILLION_TOKEN": {BFCL_JUDGE: 0.6, "tidy-FC": 10},
    }
    (folder / "prices.json").write_text(json.dumps(prices), encoding="utf-8")
    return folder


def test_the_split_is_a_stable_hash_of_the_prompt_id() -> None:
    ids = [f"simple_{i}" for i in range(2_000)]
    splits = [hashed_split(pid) for pid in ids]
    assert splits == [hashed_split(pid) for pid in ids]
    assert 0.27 < splits.count("test") / len(ids) < 0.33
    assert hashed_split("simple_0", test_percent=0) == "train"


def test_bfcl_is_a_dataset_of_the_bench() -> None:
    assert "bfcl" in DATASETS


def test_the_adapter_prices_labels_and_offers_the_tools(tmp_path: Path) -> None:
    matrix = load_dataset("bfcl", write_bfcl(tmp_path / "bfcl").parent)
    assert matrix.name == "bfcl"
    assert matrix.models == MODELS
    assert matrix.judge_model == BFCL_JUDGE
    assert len(matrix.prompts) == 39
    assert matrix.dropped == 1  # the repeated question
    first = matrix.prompts[0]
    assert (first.prompt_id, first.task) == ("simple_0", "simple")
    assert first.text == "Area of a 0.5 by 0 rectangle?"
    assert [t["function"]["name"] for t in first.tools] == ["math.area", "math_area"]
    assert [p.split for p in matrix.prompts] == [hashed_split(p.prompt_id) for p in matrix.prompts]
    tidy, llama = matrix.column("tidy-FC"), matrix.column("meta-llama_Meta-Llama-3-8B-Instruct")
    assert matrix.quality[:, tidy].tolist() == [0.0 if i % 3 == 0 else 1.0 for i in range(39)]
    assert matrix.cost_usd[0, tidy] == pytest.approx((120 * 2.5 + 15 * 10) / 1e6)
    # no tokens recorded: 4 characters a token of the question, the functions, the answer
    sent = len(first.text) + len(json.dumps([FUNCTION]))
    answer = matrix.response(0, llama)
    assert answer.startswith("<tool_call>")
    assert matrix.cost_usd[0, llama] == pytest.approx((sent / 4 + len(answer) / 4) * 0.2 / 1e6)
    assert matrix.prices["meta-llama_Meta-Llama-3-8B-Instruct"].input_usd_per_mtok == 0.2
    assert json.loads(matrix.response(0, tidy)) == [{"math_area": '{"width": 0.5, "height": 0}'}]


def test_missing_data_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="BFCL data not found"):
        bfcl_matrix(tmp_path / "nowhere")


async def test_tool_call_checks_are_the_router_s_validators_in_the_bench(
    tmp_path: Path, database: Database
) -> None:
    """Llama's odd answers are marked correct, but their arguments are not JSON: the router
    validates each recorded answer against the offered tools, so those answers earn reward 0
    (the judge, always right here, would have given 1), and its valid ones 1."""
    matrix = bfcl_matrix(write_bfcl(tmp_path / "bfcl"))
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("tidy-FC",), judge_accuracy=1.0)
    runner = LearnedRunner(matrix, database, settings, direct_writes=True)  # reads every pass
    rows = [int(i) for i in matrix.rows("train")] + [int(i) for i in matrix.rows("test")]
    await runner.run(LearnedSpec("pre", 0.0, seed=0), rows, [])
    async with database.connection() as conn:
        pre = await decision_log.list_decisions(conn, stage="pre", tenant=TENANT)
        rewards = await reward_log.list_rewards_for_decisions(conn, [d.id for d in pre])
    reward = {r.decision_id: r.value for r in rewards}
    held = rows[len(rows) - int(len(rows) * HOLDOUT_FRACTION) :]
    routed = [*rows[: len(rows) - len(held)], *held, *held]  # the held-out end twice
    llama = [
        (d, int(matrix.prompts[row].prompt_id.split("_")[1]))
        for d, row in zip(pre, routed, strict=True)
        if d.chosen_arm == "meta-llama_Meta-Llama-3-8B-Instruct"
    ]
    assert {i % 2 for _, i in llama} == {0, 1}, "the policy explored both kinds"
    for decision, i in llama:
        assert reward[decision.id] == (0.0 if i % 2 else 1.0), i


def test_offered_tools_keep_both_names_once(tmp_path: Path) -> None:
    dataset = load_bfcl(write_bfcl(tmp_path / "bfcl", n_prompts=3))
    names = [t["function"]["name"] for t in offered_tools(dataset.cases[0])]
    assert names == ["math.area", "math_area"]


@pytest.mark.skipif(
    not (SHARED_BFCL / "outputs.tsv").is_file(),
    reason=f"BFCL data not found at {SHARED_BFCL}: the shared data folder holds it",
)
def test_the_real_bfcl_matrix() -> None:
    matrix = bfcl_matrix(SHARED_BFCL)
    assert len(matrix.models) == 22
    assert len(matrix.prompts) + matrix.dropped == 1_700
    assert matrix.models[matrix.best_single("train")] == "claude-3-5-sonnet-20240620"
    assert all(p.tools for p in matrix.prompts)
    test = matrix.rows("test")
    assert 0.27 < len(test) / len(matrix.prompts) < 0.33
    assert matrix.quality[test].max(axis=1).mean() > 0.95  # some model is right on nearly all


def test_tool_check_rates_set_the_checks_beside_bfcl_s_verdict(tmp_path: Path) -> None:
    matrix = bfcl_matrix(write_bfcl(tmp_path / "bfcl"))
    rates = {rate.model: rate for rate in tool_check_rates(matrix)}
    llama = rates["meta-llama_Meta-Llama-3-8B-Instruct"]
    odd = sum(1 for p in matrix.prompts if int(p.prompt_id.split("_")[1]) % 2)
    assert (llama.answers, llama.failed, llama.wrong, llama.failed_wrong) == (39, odd, 0, 0)
    assert llama.by_check == {"tool_name": 0, "tool_json": odd, "tool_schema": 0, "tool_choice": 0}
    tidy = rates["tidy-FC"]
    assert (tidy.failed, tidy.wrong) == (0, 13)
    assert rates[BFCL_JUDGE].failed == 0  # Python syntax, dotted name: offered as BFCL named it
    json_path, md_path = write_tool_checks(matrix, tmp_path / "out")
    written = json.loads(json_path.read_text(encoding="utf-8"))
    assert written["configurations"][2] == llama.as_json()
    table = md_path.read_text(encoding="utf-8")
    assert (
        f"| meta-llama_Meta-Llama-3-8B-Instruct | 39 | 0 | {odd} | 0 (0%) |  | 0 | {odd} |" in table
    )
    assert "| tidy-FC | 39 | 13 | 0 | 0 | 0% |" in table
