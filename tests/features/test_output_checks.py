import pytest

from features.anomalies import (
    CostCapDetector,
    JsonFormatDetector,
    LanguageDetector,
    RefusalDetector,
    RepetitionDetector,
)
from features.components import assemble, check_component, first_of_kind, split_components
from features.validators import (
    Expectations,
    agreement,
    extract_answer,
    is_python_block,
    python_syntax_error,
    run_validators,
)

ANSWER = "Here is the function:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nDone."


def feed_all(detector: object, text: str, step: int = 7) -> str | None:
    seen = ""
    for start in range(0, len(text), step):
        delta = text[start : start + step]
        seen += delta
        reason = detector.feed(delta, seen)  # type: ignore[attr-defined]
        if reason:
            return str(reason)
    return None


def test_validators_json_schema_regex_python_length() -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object", "required": ["a"]}},
    }
    assert run_validators('{"a": 1}', Expectations(response_format=schema)).passed
    failed = run_validators('{"b": 1}', Expectations(response_format=schema))
    assert [r.name for r in failed.failed] == ["json"]
    assert "schema violation" in failed.reasons()[0]
    assert not run_validators("nope", Expectations(response_format={"type": "json_object"})).passed
    assert run_validators(
        "```json\n[1]\n```", Expectations(response_format={"type": "json_object"})
    ).passed
    assert run_validators("B", Expectations(regex="[A-D]")).passed
    assert not run_validators("E", Expectations(regex="[A-D]")).passed
    assert run_validators(ANSWER, Expectations()).conclusive
    broken = run_validators(ANSWER.replace("def add(a, b):", "def add(a, b:"), Expectations())
    assert "python_syntax" in broken.reasons()[0]
    assert not run_validators("  ", Expectations()).passed
    plain = run_validators("The answer is B.", Expectations())
    assert plain.passed
    assert not plain.conclusive


def test_answer_extraction_and_agreement() -> None:
    assert extract_answer("B") == "B"
    assert extract_answer("The answer is (C).") == "C"
    assert extract_answer("so x = 42") == "42"
    assert agreement("A", "The answer is A").passed
    assert not agreement("A", "B").passed
    assert not agreement("hello", "world").applies


@pytest.mark.parametrize(
    ("detector", "text", "fires"),
    [
        (RefusalDetector(), "I'm sorry, but I can't help with that.", True),
        (RefusalDetector(), "Sorry for the wait! Here is the answer.", False),
        (RepetitionDetector(), "Start. " + "and again and again " * 12, True),
        (RepetitionDetector(), ANSWER * 2, False),
        (LanguageDetector("en"), "The answer is this. " * 5 + "la respuesta es que el " * 20, True),
        (LanguageDetector("en"), "This is the answer and it is what you asked for. " * 10, False),
        (LanguageDetector("unknown"), "la respuesta es que el " * 20, False),
        (JsonFormatDetector(), "Sure! here it is", True),
        (JsonFormatDetector(), '{"a": [1, {"b": "]"}]}', False),
        (JsonFormatDetector(), '{"a": [1}', True),
        (CostCapDetector(0.001, 0.0, 1e-5), "x" * 99, False),
        (CostCapDetector(0.001, 0.0, 1e-5), "x" * 101, True),
    ],
)
def test_detectors(detector: object, text: str, fires: bool) -> None:
    assert (feed_all(detector, text) is not None) == fires


def test_components_split_check_and_assemble() -> None:
    parts = split_components(ANSWER)
    assert [p.kind for p in parts] == ["prose", "code", "prose"]
    assert parts[1].body == "def add(a, b):\n    return a + b\n"
    assert all(check_component(p) is None for p in parts)
    broken = split_components(ANSWER.replace("(a, b)", "(a, b"))
    assert check_component(broken[1]) is not None
    replacement = first_of_kind("Try:\n```python\ndef add(a, b):\n    return b + a\n```", "code")
    assert replacement is not None
    fixed = [broken[0], replacement, broken[2]]
    assert "return b + a" in assemble(fixed)
    assert assemble(fixed).startswith("Here is the function:")
    assert check_component(split_components("I'm sorry, but I can't do that.")[0]) is not None


OUTPUT_BLOCK = ANSWER + "\n\nIt prints:\n\n```\nThe sum of 2 and 3 is: 5\n```\n"
SESSION = "```python\n>>> add(2, 3)\n5\n>>> for i in range(2):\n...     add(i, i)\n0\n2\n```"


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        (OUTPUT_BLOCK, True),  # an untagged block of program output is not code to parse
        (ANSWER + "\n\nFor example:\n```\nInput: n = 7\nOutput: 3\n```", True),
        (SESSION, True),  # an interpreter session: its statements parse
        ("```\ndef add(a, b):\n    return a + b\n```", True),  # untagged code
        ("```\ndef add(a, b:\n    return a + b\n```", False),  # untagged code that is broken
        ("```\n# a comment first\ndef add(:\n    pass\n```", False),
        ("```python\n>>> add(2, 3\n5\n```", False),  # a broken statement in a session
        ("```javascript\nconst x = ;\n```", True),  # not Python: not this validator's
    ],
)
def test_python_syntax_checks_python_blocks_only(text: str, passes: bool) -> None:
    result = run_validators(text, Expectations())
    python = next(r for r in result.results if r.name == "python_syntax")
    assert python.applies is not (text.startswith("```javascript"))
    assert python.passed is passes, python.reason
    code = [c for c in split_components(text) if c.kind == "code"]
    assert all((check_component(c) is None) is passes for c in code[-1:])


@pytest.mark.parametrize(
    ("body", "python"),
    [
        ('"""A docstring."""\nx = 1', True),
        ("raise ValueError('x')", True),
        ("a, b = 1, 2", True),
        ("x: int = 0", True),
        ("x //= 2", True),
        ("grid[r][c] = 1", True),
        ("await main()", True),
        ("async with lock:\n    pass", True),
        ("pass", True),
        ("for n = 5 the answer is 120", False),
        ("from 0 to 9", False),
        ("if the list is empty, return 0", False),
        ("f(x) = x^2 + 1", False),
        ("DATABASE_URL=postgres://db/x", False),
        ("version = 1.2.3", False),
        ("Example(s):", False),
        ("import React from 'react';", False),
        ("class Foo {", False),
        ("for (int i = 0; i < n; i++) {", False),
        ("Output", False),
        ("50", False),
    ],
)
def test_which_untagged_blocks_count_as_python(body: str, python: bool) -> None:
    assert is_python_block("", body) is python


def test_a_session_is_only_a_block_that_opens_with_a_prompt() -> None:
    broken = 'def add(a, b)\n    """\n    >>> add(1, 2)\n    3\n    """\n    return a +'
    assert python_syntax_error(broken) is not None  # a doctest inside does not hide it
    assert python_syntax_error(">>> print('... and more')\n... and more") is None
    assert python_syntax_error(">>>x = = 1") is not None
    assert python_syntax_error(">>> for i in range(2):\n...     print(i)\n0\n1") is None


def test_windows_line_endings_still_find_code_blocks() -> None:
    text = "Here:\r\n```python\r\ndef add(a, b:\r\n    return a + b\r\n```\r\n"
    assert not run_validators(text, Expectations()).passed
    code = [c for c in split_components(text) if c.kind == "code"]
    assert len(code) == 1
    assert check_component(code[0]) is not None
