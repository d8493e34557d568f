"""The recorded BFCL run: tool-calling prompts, and each configuration's real calls and verdict.

The Berkeley Function Calling Leaderboard's 2024-08-11 run (see ``../shared/data/README.md``,
``bfcl/``): 1,700 prompts, each offering one or more functions, answered by 22 model
configurations. Read in place from ``questions/gorilla_openfunctions_v1_test_*.json``,
``outputs.tsv`` and ``prices.json``; never copied into the project.

What the models were offered, as BFCL offered it (and as :meth:`BfclCase.tools` rebuilds it):
native function-calling (``-FC``) configurations got the functions with dots in names turned
into ``_`` (OpenAI allows no dots), prompt-mode configurations the original names in the
prompt; for the Java and JavaScript prompts every parameter was typed ``string`` (the values
are source code).

Cost of an answer: its recorded input and output tokens at the configuration's price in
``prices.json``. Configurations run locally recorded no tokens: their tokens are estimated at
four characters a token from what they were sent (the question and the function
definitions) and what they answered. Configurations ``prices.json`` has no per-token price
for (open models BFCL ran itself) are priced at a serverless open-model price by size class
(:data:`OPEN_MODEL_PRICES`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.errors import ConfigError
from features.tool_calls import ToolCall

QUESTION_GLOB = "gorilla_openfunctions_v1_test_*.json"
CHARS_PER_TOKEN = 4
_FIELD_SIZE_LIMIT = 1 << 30

OPEN_MODEL_PRICES: Mapping[str, tuple[float, float, str]] = {
    "Salesforce_xLAM-1b-fc-r": (0.10, 0.10, "size class 1-4B"),
    "Salesforce_xLAM-7b-fc-r": (0.20, 0.20, "size class 7-8B"),
    "NousResearch_Hermes-2-Pro-Llama-3-8B": (0.20, 0.20, "size class 7-8B"),
    "meta-llama_Meta-Llama-3-8B-Instruct": (0.20, 0.20, "size class 7-8B"),
    "gorilla-openfunctions-v2": (0.20, 0.20, "size class 7-8B"),
    "meetkai_functionary-small-v3.1-FC": (0.20, 0.20, "size class 7-8B"),
    "meta-llama_Meta-Llama-3-70B-Instruct": (0.90, 0.90, "size class 70B"),
    "nvidia_nemotron-4-340b-instruct": (1.80, 1.80, "size class 100B and more"),
}
"""USD per million input and output tokens of the configurations ``prices.json`` prices not,
by parameter count, at the serverless open-model prices the shared MMLU-Pro price table uses
(7-8B 0.20, 70B 0.90, 110B 1.80; below 4B 0.10)."""


@dataclass(frozen=True, slots=True)
class BfclPrice:
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    basis: str

    def usd(self, input_tokens: float, output_tokens: float) -> float:
        return (
            input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok
        ) / 1e6


@dataclass(frozen=True, slots=True)
class BfclCase:
    """One prompt: its id, BFCL category, question and the function definitions offered
    (BFCL's dialect: parameters of type ``dict``, ``float``, ``tuple``, ``any``, ...)."""

    prompt_id: str
    category: str
    question: str
    functions: tuple[Mapping[str, Any], ...]

    def tools(self, *, native: bool) -> tuple[dict[str, Any], ...]:
        """The functions as OpenAI ``tools`` as BFCL offered them: to a native (``-FC``)
        configuration with ``_`` for dots in names, to a prompt-mode one with the names as
        defined; Java and JavaScript parameters typed ``string``."""
        code = self.category in ("java", "javascript")
        tools = []
        for function in self.functions:
            parameters = json.loads(json.dumps(function.get("parameters") or {}))
            if code:
                for spec in (parameters.get("properties") or {}).values():
                    if isinstance(spec, dict):
                        spec["type"] = "string"
            name = str(function["name"])
            tool = {
                "name": name.replace(".", "_") if native else name,
                "description": str(function.get("description", "")),
                "parameters": parameters,
            }
            tools.append({"type": "function", "function": tool})
        return tuple(tools)

    def sent_chars(self) -> int:
        """Characters a model was sent: the question and the function definitions."""
        return len(self.question) + len(json.dumps(list(self.functions)))


@dataclass(frozen=True, slots=True)
class BfclAnswer:
    """One configuration's recorded answer: the verdict of BFCL's checker (``correct``, and
    ``error_type`` when wrong), the output as recorded (``result``, JSON), tokens and latency
    where they were recorded."""

    model: str
    correct: bool
    error_type: str
    result: str
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float | None

    def text(self) -> str:
        """The answer as text: the model's text (texts joined by line breaks), else the JSON
        of its native calls as recorded (``[{name: "<arguments>"}]``)."""
        value = json.loads(self.result)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n".join(value)
        return self.result

    def native_calls(self) -> tuple[ToolCall, ...] | None:
        """The native calls of a ``-FC`` record, None when it answered in text."""
        value = json.loads(self.result)
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            return None
        return tuple(
            ToolCall(str(name), arguments if isinstance(arguments, str) else json.dumps(arguments))
            for call in value
            for name, arguments in call.items()
        )


@dataclass(frozen=True)
class BfclDataset:
    """Every case (in file order), every configuration's answer to it, and their prices."""

    cases: tuple[BfclCase, ...]
    models: tuple[str, ...]
    answers: Mapping[str, Mapping[str, BfclAnswer]]
    prices: Mapping[str, BfclPrice]

    def __iter__(self) -> Iterator[BfclCase]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def answer(self, prompt_id: str, model: str) -> BfclAnswer:
        return self.answers[prompt_id][model]

    def tokens(self, case: BfclCase, answer: BfclAnswer) -> tuple[float, float, bool]:
        """Input and output tokens of an answer, and whether they are estimated (no
        recorded counts: four characters a token of what was sent and answered)."""
        if answer.input_tokens is not None and answer.output_tokens is not None:
            return float(answer.input_tokens), float(answer.output_tokens), False
        sent = case.sent_chars() / CHARS_PER_TOKEN
        return sent, len(answer.text()) / CHARS_PER_TOKEN, True

    def cost_usd(self, case: BfclCase, answer: BfclAnswer) -> float:
        input_tokens, output_tokens, _ = self.tokens(case, answer)
        return self.prices[answer.model].usd(input_tokens, output_tokens)


def load_bfcl(folder: Path | None) -> BfclDataset:
    """Read the BFCL folder; ConfigError naming what is missing or malformed."""
    if folder is None or not (folder / "outputs.tsv").is_file():
        where = "" if folder is None else f" at {folder}"
        raise ConfigError(
            f"BFCL data not found{where}: set SIGNALROUTE_REPLAY_BFCL_DATA to a folder holding "
            "outputs.tsv, prices.json and questions/gorilla_openfunctions_v1_test_*.json"
        )
    try:
        questions = _read_questions(folder / "questions")
        answers, categories, models = _read_outputs(folder / "outputs.tsv")
        prices = _read_prices(folder / "prices.json", models)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder}: cannot read the BFCL data: {exc!r}") from None
    missing = [pid for pid in answers if pid not in questions]
    if missing:
        raise ConfigError(f"{folder}: outputs.tsv answers unknown prompts, e.g. {missing[0]}")
    cases = tuple(
        BfclCase(pid, categories[pid], question, functions)
        for pid, (question, functions) in questions.items()
        if pid in answers
    )
    for case in cases:
        absent = [m for m in models if m not in answers[case.prompt_id]]
        if absent:
            raise ConfigError(f"{folder}: no answer of {absent[0]} to {case.prompt_id}")
    return BfclDataset(cases=cases, models=models, answers=answers, prices=prices)


def _read_questions(folder: Path) -> dict[str, tuple[str, tuple[Mapping[str, Any], ...]]]:
    found: dict[str, tuple[str, tuple[Mapping[str, Any], ...]]] = {}
    paths = sorted(folder.glob(QUESTION_GLOB))
    if not paths:
        raise ValueError(f"no {QUESTION_GLOB} in {folder}")
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                row = json.loads(line)
                functions = row["function"]
                listed = functions if isinstance(functions, list) else [functions]
                found[str(row["id"])] = (str(row["question"]), tuple(listed))
    return found


def _optional_int(text: str) -> int | None:
    return int(float(text)) if text.strip() else None


def _read_outputs(
    path: Path,
) -> tuple[dict[str, dict[str, BfclAnswer]], dict[str, str], tuple[str, ...]]:
    csv.field_size_limit(_FIELD_SIZE_LIMIT)
    answers: dict[str, dict[str, BfclAnswer]] = {}
    categories: dict[str, str] = {}
    models: dict[str, None] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            latency = row["latency_s"].strip()
            answer = BfclAnswer(
                model=row["model"],
                correct=row["correct"].strip() == "1",
                error_type=row["error_type"],
                result=row["result"],
                input_tokens=_optional_int(row["input_tokens"]),
                output_tokens=_optional_int(row["output_tokens"]),
                latency_ms=float(latency) * 1000.0 if latency else None,
            )
            answers.setdefault(row["prompt_id"], {})[answer.model] = answer
            categories[row["prompt_id"]] = row["category"]
            models[answer.model] = None
    return answers, categories, tuple(models)


def _read_prices(path: Path, models: tuple[str, ...]) -> dict[str, BfclPrice]:
    table = json.loads(path.read_text(encoding="utf-8"))
    inputs = table["INPUT_PRICE_PER_MILLION_TOKEN"]
    outputs = table["OUTPUT_PRICE_PER_MILLION_TOKEN"]
    prices: dict[str, BfclPrice] = {}
    for model in models:
        # outputs.tsv writes an organisation's "/" as "_" (meta-llama_Meta-Llama-3-8B-Instruct)
        names = [model, model.replace("_", "/", 1)]
        listed = next((n for n in names if n in inputs and n in outputs), None)
        if listed is not None:
            prices[model] = BfclPrice(float(inputs[listed]), float(outputs[listed]), "prices.json")
        elif model in OPEN_MODEL_PRICES:
            usd_in, usd_out, basis = OPEN_MODEL_PRICES[model]
            prices[model] = BfclPrice(usd_in, usd_out, f"open-model price by {basis}")
        else:
            raise ValueError(f"no price for {model}: not in prices.json nor OPEN_MODEL_PRICES")
        price = prices[model]
        if not all(math.isfinite(p) for p in (price.input_usd_per_mtok, price.output_usd_per_mtok)):
            raise ValueError(f"the price of {model} is not finite")
    return prices
