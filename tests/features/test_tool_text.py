"""Tool calls read from text, on made-up answers and on BFCL's recorded prompt-mode answers
(skipped, saying so, when the data is absent: see ``conftest``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from features.tool_calls import ToolCall, check_tool_calls
from features.tool_text import parse_tool_calls
from features.validators import Expectations, run_validators
from tests.features.bfcl_records import as_tools


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        ('[{"f": "{\\"a\\": 1}"}, {"g": "{}"}]', [("f", '{"a": 1}'), ("g", "{}")]),
        ('{"name": "f", "arguments": {"a": 1}}', [("f", '{"a": 1}')]),
        ('{"tool_calls": [{"name": "f", "arguments": "{}"}]}', [("f", "{}")]),
        (
            '[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]',
            [("f", "{}")],
        ),
        ('<tool_call>\n{"arguments": {"a": 1}, "name": "f"}\n</tool_call>', [("f", '{"a": 1}')]),
        (
            '<tool_call>{"arguments": {"a": True, "b": "}"}, "name": "f"}</tool_call>',
            [("f", '{"a": True, "b": "}"}')],
        ),
        ('<tool_call>{"name": "f", "arguments": {"a": 1', [("f", '{"a": 1')]),
        (
            "f(a=1, b='x', c=[1, 2.5], d=None, e=True)",
            [("f", '{"a": 1, "b": "x", "c": [1, 2.5], "d": null, "e": true}')],
        ),
        (
            "[math.hypot(x=3), geo.dist.km(p=(1, 2))]",
            [("math.hypot", '{"x": 3}'), ("geo.dist.km", '{"p": [1, 2]}')],
        ),
        ("f(a=1)\ng(b=2)\n", [("f", '{"a": 1}'), ("g", '{"b": 2}')]),
        ("```python\nf(a=2*math.pi, b=v)\n```", [("f", '{"a": "2*math.pi", "b": "v"}')]),
        ("f({'base': 10})", [("f", "{'base': 10}")]),
        ("f(1, 2)", [("f", "1, 2")]),
        ("f()", [("f", "{}")]),
    ],
)
def test_calls_written_as_text(text: str, calls: list[tuple[str, str]]) -> None:
    assert parse_tool_calls(text) == tuple(ToolCall(n, a) for n, a in calls)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The question lacks the case_id parameter.",
        "4",
        "x = f(a=1)",
        "[]",
        '"just a string"',
        '{"answer": 3}',
        "To do this, call [f(a=1)] and then read the result.",
        "f(a=1) + g(b=2)",
        "[f(a=1), 3]",
    ],
)
def test_text_without_calls(text: str) -> None:
    assert parse_tool_calls(text) is None


def test_parsed_calls_meet_the_checks() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "type": "dict",
                    "properties": {"a": {"type": "float"}},
                    "required": ["a"],
                },
            },
        }
    ]
    passed = check_tool_calls(tools, parse_tool_calls("[f(a=2)]") or ())
    assert passed.passed
    symbolic = check_tool_calls(tools, parse_tool_calls("[f(a=2*math.pi)]") or ())
    assert symbolic.summary().reasons() == [
        "tool_schema: call 1 (f): '2*math.pi' is not of type 'number' at a"
    ]
    positional = check_tool_calls(tools, parse_tool_calls("f({'a': 2})") or ())
    assert [r.name for r in positional.summary().failed] == ["tool_json"]


# --- BFCL's recorded prompt-mode answers -----------------------------------------------------


def recorded_text(result: str) -> str:
    """A record's answer as text: the model's text (joined when a list of texts), else the
    JSON of its calls."""
    value = json.loads(result)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return result


def both_names(question: dict[str, Any]) -> list[dict[str, Any]]:
    """Each function offered under its BFCL name and its ``_`` name (what -FC configurations
    and Hermes were offered)."""
    return as_tools(question, native=False) + as_tools(question, native=True)


def test_accepted_prompt_mode_calls_parse_and_pass(
    outputs: list[dict[str, str]], questions: dict[str, dict[str, Any]]
) -> None:
    """Calls BFCL accepted in the AST categories, written as Python by prompt-mode models,
    parse into calls that meet the checks (the few exceptions are schemas BFCL's checker
    does not enforce, such as a table declared an array of integers)."""
    prompt_mode = {"claude-3-5-sonnet-20240620", "gpt-4o-mini-2024-07-18", "command-r-plus"}
    parsed = passed = 0
    for row in outputs:
        if row["model"] not in prompt_mode or row["correct"] != "1":
            continue
        if row["category"] not in ("simple", "multiple_function", "parallel_function"):
            continue
        calls = parse_tool_calls(recorded_text(row["result"]))
        assert calls is not None, row["result"]
        parsed += 1
        passed += check_tool_calls(both_names(questions[row["prompt_id"]]), calls).passed
    assert parsed > 2_000
    assert passed > 0.99 * parsed


def test_malformed_prompt_mode_calls_fail_the_checks(
    outputs: list[dict[str, str]], questions: dict[str, dict[str, Any]]
) -> None:
    """Real failures BFCL's decoder reported: Llama-3-8B passing a dict positionally
    (``f({'base': 10})``), Gemini-1.5-Pro wrapping its call in ``print(default_api.f(...))``;
    the checks name what is wrong."""
    reasons: dict[str, list[str]] = {}
    for row in outputs:
        if not row["error_type"].startswith("ast_decoder"):
            continue
        calls = parse_tool_calls(recorded_text(row["result"]))
        if calls is None:
            continue
        checks = check_tool_calls(both_names(questions[row["prompt_id"]]), calls)
        reasons.setdefault(row["model"], []).extend(checks.summary().reasons())
    llama = reasons["meta-llama_Meta-Llama-3-8B-Instruct"]
    assert sum("tool_json" in r and "not JSON" in r for r in llama) >= 100
    gemini = reasons["gemini-1.5-pro-preview-0514"]
    assert sum("(print): not offered" in r for r in gemini) >= 100


def test_data_fixture_points_at_the_shared_data(bfcl_dir: Path) -> None:
    assert (bfcl_dir / "prices.json").is_file()


def test_run_validators_checks_the_calls_written_in_the_text() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "dict"}}}]
    offered = Expectations(tools=tools)
    assert run_validators("[f(a=1)]", offered).passed
    assert run_validators("[f(a=1)]", offered).conclusive
    broken = run_validators('<tool_call>{"name": "f", "arguments": {"a": True}}', offered)
    assert [r.name for r in broken.failed] == ["tool_json"]
    assert not run_validators("[g(a=1)]", offered).passed
    prose = run_validators("No function fits this question.", offered)
    assert prose.passed
    assert not prose.conclusive
    forced = Expectations(tools=tools, tool_choice="required")
    assert run_validators("No function fits.", forced).reasons() == [
        "tool_choice: a tool call is required"
    ]
    assert [r.name for r in run_validators("[g(a=1)]", Expectations()).results] == [
        "length", "json", "regex", "python_syntax"
    ]  # fmt: skip
