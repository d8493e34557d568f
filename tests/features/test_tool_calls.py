"""Tool-call checks, on made-up calls and on BFCL's real recorded calls (the data tests are
skipped, saying so, when the data is absent: see ``conftest``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from features.json_prefix import JsonPrefix
from features.tool_calls import (
    CHECK_NAMES,
    ToolArgumentsDetector,
    ToolCall,
    arguments_prefix_error,
    check_tool_calls,
    check_tool_choice,
    normalise_schema,
    offered_functions,
)
from tests.features.bfcl_records import as_tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "dict",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "coords": {"type": "tuple", "items": {"type": "float"}},
                "extra": {"type": "any"},
            },
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
TOOLS = [WEATHER, TIME]


def test_bfcl_type_names_become_json_schema() -> None:
    schema = normalise_schema(WEATHER["function"]["parameters"])  # type: ignore[index]
    assert schema["type"] == "object"
    properties = schema["properties"]
    assert properties["coords"] == {"type": "array", "items": {"type": "number"}}
    assert properties["extra"] == {}
    assert properties["city"] == {"type": "string"}
    java = normalise_schema(
        {"type": "dict", "properties": {"m": {"type": "HashMap"}, "s": {"type": "String"}}}
    )
    assert java["properties"] == {"m": {"type": "object"}, "s": {"type": "string"}}
    assert normalise_schema({"anyOf": [{"type": "float"}, {"type": "tuple"}]}) == {
        "anyOf": [{"type": "number"}, {"type": "array"}]
    }
    assert normalise_schema({"type": ["dict", "null"]}) == {"type": ["object", "null"]}


def test_offered_functions_by_name() -> None:
    offered = offered_functions([*TOOLS, {"type": "retrieval"}, {"type": "function"}])
    assert sorted(offered) == ["get_time", "get_weather"]
    assert offered_functions([{"type": "function", "function": {"name": "f"}}]) == {"f": {}}


def test_a_good_call_passes_every_check() -> None:
    calls = [ToolCall("get_weather", '{"city": "Paris", "coords": [48.8, 2.3], "extra": [1]}')]
    checks = check_tool_calls(TOOLS, calls, tool_choice="required")
    assert checks.passed
    summary = checks.summary()
    assert [r.name for r in summary.results] == list(CHECK_NAMES)
    assert all(r.applies and r.passed for r in summary.results)
    assert summary.conclusive


@pytest.mark.parametrize(
    ("call", "failed", "reason"),
    [
        (
            ToolCall("get_weather", '{"city": "Paris", "flag": True}'),
            "tool_json",
            "arguments are not JSON: Expecting value at character 27",
        ),
        (
            ToolCall("get_weather", '["Paris"]'),
            "tool_json",
            "arguments are JSON but not an object (list)",
        ),
        (
            ToolCall("get_weather", '{"days": 3}'),
            "tool_schema",
            "'city' is a required property",
        ),
        (
            ToolCall("get_weather", '{"city": "Paris", "days": "three"}'),
            "tool_schema",
            "'three' is not of type 'integer' at days",
        ),
        (
            ToolCall("get_weather", '{"city": "Paris", "coords": [1, "x"]}'),
            "tool_schema",
            "'x' is not of type 'number' at coords/1",
        ),
        (
            ToolCall("get_weather_now", '{"city": "Paris"}'),
            "tool_name",
            "not offered (offered: get_time, get_weather)",
        ),
    ],
)
def test_a_bad_call_fails_one_named_check(call: ToolCall, failed: str, reason: str) -> None:
    checks = check_tool_calls(TOOLS, [call])
    assert not checks.passed
    (check,) = checks.calls
    assert check.reasons() == [f"{failed}: {reason}"]
    summary = checks.summary()
    assert [r.name for r in summary.failed] == [failed]
    assert summary.reasons() == [f"{failed}: call 1 ({call.name}): {reason}"]


def test_summary_reports_the_first_failure_and_counts_the_rest() -> None:
    calls = [
        ToolCall("get_time", ""),  # no arguments: an empty object
        ToolCall("get_weather", "{}"),
        ToolCall("get_weather", '{"city": 1}'),
    ]
    checks = check_tool_calls(TOOLS, calls)
    assert [c.passed for c in checks.calls] == [True, False, False]
    (schema,) = checks.summary().failed
    assert schema.reason == "call 2 (get_weather): 'city' is a required property (and 1 more)"
    assert not checks.summary().results[-1].applies  # tool_choice auto: nothing to check


def test_an_unknown_function_has_no_schema_to_check() -> None:
    (check,) = check_tool_calls(TOOLS, [ToolCall("nope", "{")]).calls
    assert [(r.name, r.applies, r.passed) for r in check.results] == [
        ("tool_name", True, False),
        ("tool_json", True, False),
        ("tool_schema", False, True),
    ]


def test_an_invalid_schema_passes_saying_so() -> None:
    broken = {"type": "function", "function": {"name": "f", "parameters": {"required": "city"}}}
    (check,) = check_tool_calls([broken], [ToolCall("f", "{}")]).calls
    assert check.passed
    assert check.results[2].reason.startswith("schema is invalid")


@pytest.mark.parametrize(
    ("choice", "names", "applies", "passed"),
    [
        (None, [], False, True),
        ("auto", [], False, True),
        ("required", [], True, False),
        ("required", ["get_time"], True, True),
        ("none", [], True, True),
        ("none", ["get_time"], True, False),
        ({"type": "function", "function": {"name": "get_weather"}}, ["get_time"], True, False),
        ({"type": "function", "function": {"name": "get_weather"}}, ["get_weather"], True, True),
        ({"type": "function"}, [], False, True),
    ],
)
def test_tool_choice(choice: Any, names: list[str], applies: bool, passed: bool) -> None:
    result = check_tool_choice(choice, [ToolCall(n, "{}") for n in names])
    assert (result.applies, result.passed) == (applies, passed)
    assert result.reason == ("" if passed else result.reason)
    if not passed:
        assert check_tool_calls(TOOLS, [ToolCall(n, "{}") for n in names], choice).summary().failed


def test_streamed_arguments_are_cut_where_they_break() -> None:
    assert arguments_prefix_error('{"city": "Par') is None
    assert arguments_prefix_error('"Paris"') == "expected a JSON object, got '\"' at character 1"
    detector = ToolArgumentsDetector()
    assert detector.feed(0, '{"city": ') is None
    assert detector.feed(1, '{"a": 1') is None
    assert detector.feed(0, '"Paris"}') is None
    assert detector.complete(0)
    assert not detector.complete(1)
    assert not detector.complete(2)
    reason = detector.feed(1, ", 'b': 2}")
    assert reason == (
        "tool_arguments: call 2 arguments cannot become JSON: "
        'expected a key in double quotes, got "\'" at character 10'
    )


# --- BFCL's recorded calls -------------------------------------------------------------------


def native_calls(result: str) -> list[ToolCall] | None:
    """The calls of a -FC record (``[{name: "<arguments>"}]``); None for a text answer."""
    value = json.loads(result)
    if not isinstance(value, list):
        return None
    return [ToolCall(name, arguments) for call in value for name, arguments in call.items()]


def fc_records(outputs: list[dict[str, str]]) -> Iterator[tuple[dict[str, str], list[ToolCall]]]:
    for row in outputs:
        if "-FC" in row["model"]:
            calls = native_calls(row["result"])
            if calls is not None:
                yield row, calls


def test_calls_bfcl_accepted_pass_nearly_always(
    outputs: list[dict[str, str]], questions: dict[str, dict[str, Any]]
) -> None:
    """BFCL's checker accepted these calls (outside relevance, where a call is the error);
    our checks must not call them broken. The few that fail are schema violations BFCL's
    checkers let through (a float for an integer, ``null`` for an optional string, a
    boolean where the schema says string), which a strict tool would refuse too."""
    checked, failures = 0, []
    for row, calls in fc_records(outputs):
        if row["correct"] != "1" or row["category"] == "relevance":
            continue
        checks = check_tool_calls(as_tools(questions[row["prompt_id"]], native=True), calls)
        checked += 1
        failures += [(row["prompt_id"], r) for r in checks.summary().failed]
    assert checked > 8_000
    assert {r.name for _, r in failures} <= {"tool_schema"}
    assert all(" is not " in r.reason for _, r in failures), failures
    assert len(failures) < 0.005 * checked


def test_broken_recorded_native_calls_fail(
    outputs: list[dict[str, str]], questions: dict[str, dict[str, Any]]
) -> None:
    """Real failures of -FC configurations: arguments that are not JSON (functionary's),
    functions nobody offered (relevance prompts, ``multi_tool_use.parallel``), missing
    required arguments."""
    failed: dict[str, list[str]] = {name: [] for name in CHECK_NAMES}
    for row, calls in fc_records(outputs):
        checks = check_tool_calls(as_tools(questions[row["prompt_id"]], native=True), calls)
        for result in checks.summary().failed:
            failed[result.name].append(f"{row['model']} {row['prompt_id']}: {result.reason}")
    assert any("functionary" in f and "not JSON" in f for f in failed["tool_json"])
    assert any("multi_tool_use.parallel" in f for f in failed["tool_name"])
    assert any("is a required property" in f for f in failed["tool_schema"])
    assert len(failed["tool_json"]) >= 10
    assert len(failed["tool_name"]) >= 30


def test_hermes_tool_call_markup_that_bfcl_could_not_decode_is_not_json(
    outputs: list[dict[str, str]], questions: dict[str, dict[str, Any]]
) -> None:
    """Hermes-2-Pro (offered BFCL's ``_`` names) writes ``<tool_call>{"arguments": ...,
    "name": ...}``;
    where it wrote Python (``True``, single quotes) BFCL's decoder failed, and the streaming
    check says at which character the text stopped being able to become JSON."""
    impossible = unfinished = decoded = 0
    for row in outputs:
        if not row["model"].startswith("NousResearch_Hermes-2-Pro"):
            continue
        for body in _tool_call_bodies(json.loads(row["result"])):
            prefix = JsonPrefix(require_object=True)
            error = prefix.feed(body)
            try:
                call = json.loads(body)
            except json.JSONDecodeError:
                assert error is not None or not prefix.complete, body
                impossible += error is not None
                unfinished += error is None  # e.g. a brace short: could still be closed
                continue
            assert error is None, body
            assert prefix.complete
            decoded += 1
            tools = as_tools(questions[row["prompt_id"]], native=True)  # BFCL's names for it
            arguments = json.dumps(call["arguments"])
            checks = check_tool_calls(tools, [ToolCall(call["name"], arguments)])
            if row["category"] == "simple" and row["correct"] == "1":
                assert checks.passed, (row["prompt_id"], checks.summary().reasons())
    assert impossible >= 20
    assert unfinished >= 1
    assert decoded > 1_000


def _tool_call_bodies(text: str) -> list[str]:
    parts = text.split("<tool_call>")[1:]
    return [part.split("</tool_call>")[0].strip() for part in parts]
