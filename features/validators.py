"""Post-generation validators: small, pure checks of an answer, one interface.

A validator says whether it applies to a request and, if so, whether the answer passes and
why not. ``run_validators`` runs a list and summarises the verdicts for the output signals.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema

from features.tool_calls import check_tool_calls
from features.tool_text import parse_tool_calls
from features.verdicts import ValidationResult, ValidationSummary

_FENCED = re.compile(r"```([a-zA-Z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)
_FENCED_JSON = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_CHOICE = re.compile(r"(?:^|answer\s*(?:is|:)?\s*|\()\s*([A-E])(?:\)|\.|\b)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PYTHON_TAGS = frozenset({"python", "py", "python3"})
_PYTHON_HEADER = re.compile(
    r"(?:async\s+)?(?:def|class|for|while|if|elif|else|with|try|except|finally|match)\b.*:$"
    r"|@[A-Za-z_]"
)
_PYTHON_SIMPLE = re.compile(
    r"(?:import|from\s+\S+\s+import|return|raise|assert|del|pass|yield|global|nonlocal|await)\b"
)
_STATEMENTS = (
    ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Import, ast.ImportFrom, ast.Return, ast.Raise,
    ast.Assert, ast.Delete, ast.Pass, ast.Global, ast.Nonlocal,
)  # fmt: skip


@dataclass(frozen=True)
class Expectations:
    """What the caller asked of the answer (from the request). ``tools`` (OpenAI format) and
    ``tool_choice``: the functions offered; the calls the answer writes in its text are
    checked against them (:func:`run_validators`)."""

    response_format: Mapping[str, Any] | None = None
    regex: str | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    code_expected: bool = False
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = None


class Validator(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, text: str, expect: Expectations) -> ValidationResult: ...


def extract_json(text: str) -> Any:
    """The JSON value in ``text``: the whole text, or its first fenced block.

    Raises ValueError when neither parses.
    """
    candidates = [text.strip()] + [m.strip() for m in _FENCED_JSON.findall(text)]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise ValueError("the output is not JSON")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks as (language tag, body)."""
    return [(lang.lower(), body) for lang, body in _FENCED.findall(text)]


def is_python_block(language: str, body: str) -> bool:
    """Whether a fenced block is Python code that must parse: tagged Python, or untagged and
    opening with a Python statement (a definition or control header ending in ``:``, an
    import, a simple statement, an assignment or a call, a docstring, a ``>>>`` prompt). An
    untagged block of program output, example input ("Output: 3"), prose, maths
    ("f(x) = x^2") or another language's code is not checked."""
    if language:
        return language.lower() in _PYTHON_TAGS
    lines = (line.strip() for line in body.splitlines())
    first = next((line for line in lines if line and not line.startswith("#")), "")
    if first.startswith((">>>", '"""', "'''")):
        return True
    if first.endswith(("{", ";")):  # C, Java, JavaScript
        return False
    if _PYTHON_HEADER.match(first) or _PYTHON_SIMPLE.match(first):
        return True
    try:  # a whole statement on its own line: an assignment, a call, ...
        statement = ast.parse(first).body[0]
    except (SyntaxError, IndexError):
        return False
    if isinstance(statement, ast.Expr):  # an expression counts only as a call or an await
        return isinstance(statement.value, ast.Call | ast.Await)
    return isinstance(statement, _STATEMENTS)


def python_source(body: str) -> str:
    """The code of a Python block: the block itself, or, for an interpreter session
    (opening with a ``>>>`` prompt, followed by what was printed), the statements after its
    prompts."""
    lines = body.splitlines()
    opening = next((line.lstrip() for line in lines if line.strip()), "")
    if not opening.startswith(">>>"):
        return body
    statements = []
    continued = False  # whether a "..." line now continues the statement (else: output)
    for line in lines:
        stripped = line.lstrip()
        prompt = stripped.startswith(">>>")
        if prompt or (continued and stripped.startswith("...")):
            code = stripped[4:] if stripped[3:4] == " " else stripped[3:]
            statements.append(code)
            # a block header or an open bracket goes on; so does an indented body line
            continued = code.rstrip().endswith((":", "\\", ",", "(", "[", "{")) or (
                not prompt and code[:1].isspace()
            )
        else:
            continued = False
    return "\n".join(statements)


@functools.lru_cache(maxsize=16)
def python_syntax_error(body: str) -> str | None:
    """Why a Python block does not parse (None when it does). The last few blocks' answers
    are kept: an answer's code is checked as a component and again by the validators, and
    parsing a block costs ~80 us."""
    try:
        ast.parse(python_source(body))
    except SyntaxError as exc:
        return f"{exc.msg} (line {exc.lineno})"
    return None


class JsonValidator:
    """JSON requested (``json_object``) or a schema given (``json_schema``): parse and check."""

    name = "json"

    def check(self, text: str, expect: Expectations) -> ValidationResult:
        kind = (expect.response_format or {}).get("type")
        if kind not in ("json_object", "json_schema"):
            return ValidationResult(self.name, applies=False, passed=True)
        try:
            value = extract_json(text)
        except ValueError as exc:
            return ValidationResult(self.name, True, False, str(exc))
        schema = ((expect.response_format or {}).get("json_schema") or {}).get("schema")
        if kind == "json_schema" and isinstance(schema, Mapping):
            try:
                jsonschema.validate(value, dict(schema))
            except jsonschema.ValidationError as exc:
                return ValidationResult(self.name, True, False, f"schema violation: {exc.message}")
            except jsonschema.SchemaError as exc:
                return ValidationResult(
                    self.name, True, True, f"requested schema is invalid: {exc.message}"
                )
        return ValidationResult(self.name, True, True)


class RegexValidator:
    """The answer (stripped) must match the caller's regular expression."""

    name = "regex"

    def check(self, text: str, expect: Expectations) -> ValidationResult:
        if not expect.regex:
            return ValidationResult(self.name, applies=False, passed=True)
        if re.fullmatch(expect.regex, text.strip(), re.DOTALL):
            return ValidationResult(self.name, True, True)
        return ValidationResult(self.name, True, False, f"does not match {expect.regex!r}")


class PythonSyntaxValidator:
    """Every Python code block (``is_python_block``) parses; applies when code is in or
    expected."""

    name = "python_syntax"

    def check(self, text: str, expect: Expectations) -> ValidationResult:
        blocks = [body for lang, body in code_blocks(text) if is_python_block(lang, body)]
        if not blocks:
            if expect.code_expected and not code_blocks(text):
                return ValidationResult(self.name, True, False, "no code block in the answer")
            return ValidationResult(self.name, applies=False, passed=True)
        for index, body in enumerate(blocks):
            error = python_syntax_error(body)
            if error is not None:
                return ValidationResult(
                    self.name, True, False, f"code block {index + 1} does not parse: {error}"
                )
        return ValidationResult(self.name, True, True)


class LengthValidator:
    """The answer's length lies within the caller's bounds; an empty answer always fails."""

    name = "length"

    def check(self, text: str, expect: Expectations) -> ValidationResult:
        size = len(text.strip())
        if size == 0:
            return ValidationResult(self.name, True, False, "empty output")
        if expect.min_chars is not None and size < expect.min_chars:
            return ValidationResult(self.name, True, False, f"{size} chars < {expect.min_chars}")
        if expect.max_chars is not None and size > expect.max_chars:
            return ValidationResult(self.name, True, False, f"{size} chars > {expect.max_chars}")
        applies = expect.min_chars is not None or expect.max_chars is not None
        return ValidationResult(self.name, applies, True)


DEFAULT_VALIDATORS: tuple[Validator, ...] = (
    LengthValidator(),
    JsonValidator(),
    RegexValidator(),
    PythonSyntaxValidator(),
)


def extract_answer(text: str) -> str | None:
    """A short final answer for agreement checks: a multiple-choice letter, else the last
    number, else None."""
    stripped = text.strip()
    if len(stripped) <= 3 and stripped[:1].upper() in "ABCDE" and stripped:
        return stripped[0].upper()
    choice = _CHOICE.search(stripped[:200])
    if choice:
        return choice.group(1).upper()
    numbers = _NUMBER.findall(stripped)
    return numbers[-1] if numbers else None


def agreement(first: str, second: str) -> ValidationResult:
    """Self-consistency: two answers agree on their extracted final answer."""
    a, b = extract_answer(first), extract_answer(second)
    if a is None or b is None:
        return ValidationResult("agreement", applies=False, passed=True)
    if a == b:
        return ValidationResult("agreement", True, True)
    return ValidationResult("agreement", True, False, f"answers disagree: {a} vs {b}")


def run_validators(
    text: str, expect: Expectations, validators: Sequence[Validator] = DEFAULT_VALIDATORS
) -> ValidationSummary:
    """Every validator's verdict; with tools offered, also the tool-call checks
    (``tool_name``, ``tool_json``, ``tool_schema``, ``tool_choice``) of the calls written in
    ``text`` (none when it is prose)."""
    results = tuple(v.check(text, expect) for v in validators)
    if expect.tools is not None:
        calls = parse_tool_calls(text) or ()
        results += check_tool_calls(expect.tools, calls, expect.tool_choice).summary().results
    return ValidationSummary(results)
