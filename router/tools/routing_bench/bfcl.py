"""BFCL as a routing matrix: tool-calling traffic among 22 recorded model configurations.

Each BFCL prompt is one row: prompt = the question, task = BFCL's category, and the functions
it offered travel with it (``Prompt.tools``), so every learned request carries them as
``tools`` and the router's tool-call checks (``features.tool_calls``, on the calls read from
the answer's text by ``features.tool_text``) run on each recorded answer as real validators:
a call to a function not offered, arguments that are not JSON or that fail the function's
schema fail validation, as a failed answer does.

- quality: BFCL's recorded verdict (``correct``);
- cost: the recorded input/output tokens at the configuration's price (``prices.json``);
  configurations run locally recorded no tokens, so theirs are estimated at four characters
  a token of the question plus the function definitions, and of the answer; configurations
  without a price there get a size-class open-model price (``router.tools.replay_pool.bfcl``);
- response: the recorded answer (native calls as their recorded JSON, otherwise the text);
- split: deterministic, 30% of prompts to test by a hash of the prompt id
  (:func:`hashed_split`), the same on every machine and for every ``--split-seed``;
- prompts whose question text repeats an earlier prompt's (103 of 1,700, offering other
  functions) are left out (``dropped``): the router finds a recorded prompt by its text and
  could not tell them apart;
- the judge is billed as ``gpt-4o-mini-2024-07-18`` (the cheapest configuration above the
  median's quality).

:func:`write_tool_checks` reports how the tool-call checks judge every recorded answer, beside
BFCL's verdict (``tool_checks.md``).

Each function is offered under its BFCL name and its ``_`` name: BFCL sent native (``-FC``)
configurations the ``_`` names and prompt-mode configurations the original ones, and every
answer is checked against what its configuration was offered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.tool_calls import CHECK_NAMES
from features.validators import Expectations, run_validators
from router.tools.replay_pool.bfcl import BfclCase, BfclDataset, load_bfcl
from router.tools.routing_bench.matrix import Price, RoutingMatrix, Split
from router.tools.routing_bench.tables import build_matrix

BFCL_JUDGE = "gpt-4o-mini-2024-07-18"
TEST_PERCENT = 30


def hashed_split(prompt_id: str, test_percent: int = TEST_PERCENT) -> Split:
    """``test`` for ``test_percent`` of prompt ids, by a hash of the id (stable everywhere)."""
    digest = hashlib.blake2b(prompt_id.encode(), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "little") % 100 < test_percent else "train"


def offered_tools(case: BfclCase) -> tuple[dict[str, Any], ...]:
    """The case's functions under both names BFCL offered them by (each name once)."""
    tools: dict[str, dict[str, Any]] = {}
    for tool in (*case.tools(native=False), *case.tools(native=True)):
        tools.setdefault(tool["function"]["name"], tool)
    return tuple(tools.values())


def distinct_cases(dataset: BfclDataset) -> tuple[list[BfclCase], int]:
    """The cases whose question text no earlier case has, and how many were left out."""
    seen: set[str] = set()
    kept: list[BfclCase] = []
    for case in dataset:
        if case.question not in seen:
            seen.add(case.question)
            kept.append(case)
    return kept, len(dataset) - len(kept)


def bfcl_matrix(folder: Path) -> RoutingMatrix:
    """The BFCL folder as a matrix (see the module contract)."""
    dataset = load_bfcl(folder)
    cases, repeated = distinct_cases(dataset)

    def rows() -> Iterator[dict[str, Any]]:
        for case in cases:
            split = hashed_split(case.prompt_id)
            for model in dataset.models:
                answer = dataset.answer(case.prompt_id, model)
                yield {
                    "prompt_id": case.prompt_id,
                    "prompt": case.question,
                    "task": case.category,
                    "model": model,
                    "quality": 1.0 if answer.correct else 0.0,
                    "cost_usd": dataset.cost_usd(case, answer),
                    "response": answer.text(),
                    "split": split,
                }

    prices = {
        model: Price(price.input_usd_per_mtok, price.output_usd_per_mtok)
        for model, price in dataset.prices.items()
    }
    matrix = build_matrix(
        rows(), name="bfcl", judge_model=BFCL_JUDGE, prices=prices, source=str(folder)
    )
    tools: Mapping[str, tuple[dict[str, Any], ...]] = {c.prompt_id: offered_tools(c) for c in cases}
    prompts = tuple(dataclasses.replace(p, tools=tools[p.prompt_id]) for p in matrix.prompts)
    return dataclasses.replace(matrix, prompts=prompts, dropped=repeated)


@dataclass(frozen=True)
class ToolCheckRate:
    """How the tool-call checks judged one configuration's recorded answers (every prompt of
    the matrix): ``failed`` answers failed some check (``by_check`` counts each), ``wrong``
    were wrong by BFCL's verdict, ``failed_wrong`` both."""

    model: str
    answers: int
    failed: int
    wrong: int
    failed_wrong: int
    by_check: Mapping[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "answers": self.answers,
            "failed": self.failed,
            "wrong": self.wrong,
            "failed_wrong": self.failed_wrong,
            "by_check": dict(self.by_check),
        }


def tool_check_rates(matrix: RoutingMatrix) -> list[ToolCheckRate]:
    """The router's validators on every recorded answer with its prompt's tools: what the
    learned runs see when they validate an answer (pure: no routing)."""
    rates = []
    for column, model in enumerate(matrix.models):
        failed = wrong = both = 0
        by_check = dict.fromkeys(CHECK_NAMES, 0)
        for row, prompt in enumerate(matrix.prompts):
            summary = run_validators(matrix.response(row, column), Expectations(tools=prompt.tools))
            names = [r.name for r in summary.failed if r.name in by_check]
            is_wrong = bool(matrix.quality[row, column] < 0.5)
            for name in names:
                by_check[name] += 1
            failed += bool(names)
            wrong += is_wrong
            both += bool(names) and is_wrong
        rates.append(ToolCheckRate(model, len(matrix.prompts), failed, wrong, both, by_check))
    return rates


def tool_checks_markdown(rates: list[ToolCheckRate]) -> str:
    lines = [
        "# Tool-call checks on BFCL's recorded answers",
        "",
        "Every recorded answer of every prompt, validated as the learned runs validate it "
        "(calls read from the answer's text, checked against the functions offered). "
        "`failed`: answers failing a check; `of them wrong`: how many of those BFCL's "
        "checker also marked wrong; `caught`: the share of BFCL's wrong answers that fail "
        "a check.",
        "",
        "| configuration | answers | wrong (BFCL) | failed a check | of them wrong | caught | "
        + " | ".join(CHECK_NAMES)
        + " |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(CHECK_NAMES),
    ]
    for rate in rates:
        precision = f" ({100 * rate.failed_wrong / rate.failed:.0f}%)" if rate.failed else ""
        caught = f"{100 * rate.failed_wrong / rate.wrong:.0f}%" if rate.wrong else ""
        checks = " | ".join(str(rate.by_check[name]) for name in CHECK_NAMES)
        lines.append(
            f"| {rate.model} | {rate.answers} | {rate.wrong} | {rate.failed} | "
            f"{rate.failed_wrong}{precision} | {caught} | {checks} |"
        )
    return "\n".join(lines) + "\n"


def write_tool_checks(matrix: RoutingMatrix, out: Path) -> list[Path]:
    """``tool_checks.json`` and ``tool_checks.md`` in ``out``."""
    rates = tool_check_rates(matrix)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "tool_checks.json", out / "tool_checks.md"
    payload = {
        "dataset": matrix.name,
        "checks": list(CHECK_NAMES),
        "configurations": [rate.as_json() for rate in rates],
    }
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(tool_checks_markdown(rates), encoding="utf-8")
    return [json_path, md_path]
