"""BFCL's recorded questions and outputs for the tool-call tests, read where they lie.

The data lives outside the repository (``<repo>/../shared/data/bfcl``, or wherever
SIGNALROUTE_REPLAY_BFCL_DATA points); the fixtures in ``conftest`` skip, saying so, when it is
absent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BFCL = REPO_ROOT.parent / "shared" / "data" / "bfcl"


def read_questions(folder: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / "questions").glob("gorilla_openfunctions_v1_test_*.json")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                question = json.loads(line)
                found[question["id"]] = question
    return found


def read_outputs(folder: Path) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    with (folder / "outputs.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def as_tools(question: Mapping[str, Any], *, native: bool) -> list[dict[str, Any]]:
    """The question's functions as OpenAI tools, as BFCL offered them: to native (-FC)
    configurations with dots in names turned into ``_``, and Java/JavaScript parameters as
    strings (their values are source code)."""
    functions = question["function"]
    tools = []
    for function in functions if isinstance(functions, list) else [functions]:
        parameters = json.loads(json.dumps(function["parameters"]))
        if question["id"].startswith(("java_", "javascript_")):
            for spec in parameters.get("properties", {}).values():
                spec["type"] = "string"
        name = function["name"].replace(".", "_") if native else function["name"]
        tools.append({"type": "function", "function": {"name": name, "parameters": parameters}})
    return tools
