"""Checks of the tool calls a model made against the tools it was offered.

Pure functions over the OpenAI ``tools`` format (``[{"type": "function", "function": {name,
description, parameters}}]``) and the calls of an answer (a name and the arguments text the
model wrote). The verdicts are :class:`~features.validators.ValidationResult` values under
four names, so a failed call becomes an output signal like any failed validator:

- ``tool_name``: the call names a function that was not offered;
- ``tool_json``: the arguments are not a JSON object;
- ``tool_schema``: the arguments fail the function's ``parameters`` JSON Schema;
- ``tool_choice``: ``tool_choice`` forced a call (``"required"`` or a named function) that
  is missing, or forbade calls (``"none"``) and some were made.

Function definitions in the Gorilla/BFCL dialect are accepted: its type names (``dict``,
``float``, ``tuple``, ``any``, and a few of Java's such as ``String`` or ``HashMap``) are
mapped to JSON Schema before validating (:func:`normalise_schema`).

For streams, :class:`ToolArgumentsDetector` watches each call's argument deltas and says
when one can no longer become a JSON object (see :mod:`features.json_prefix`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

from features.json_prefix import JsonPrefix, json_prefix_error
from features.verdicts import ValidationResult, ValidationSummary

CHECK_NAMES = ("tool_name", "tool_json", "tool_schema", "tool_choice")

# Type names of the Gorilla/BFCL dialect (and the Java and JavaScript names it uses) in JSON
# Schema; None: any value.
_TYPE_NAMES: dict[str, str | None] = {
    "dict": "object",
    "float": "number",
    "double": "number",
    "tuple": "array",
    "list": "array",
    "bool": "boolean",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "bigint": "integer",
    "str": "string",
    "char": "string",
    "hashmap": "object",
    "hashtable": "object",
    "map": "object",
    "arraylist": "array",
    "queue": "array",
    "stack": "array",
    "any": None,
    "": None,
}
_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
# Keywords whose value is a schema, a list of schemas or a map of name -> schema.
_SUBSCHEMA = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames"})
_SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


@dataclass(frozen=True)
class ToolCall:
    """One call of an answer: the function's name and the arguments text the model wrote."""

    name: str
    arguments: str


@dataclass(frozen=True)
class CallCheck:
    """The verdicts on one call (``index`` is its position in the answer)."""

    index: int
    name: str
    results: tuple[ValidationResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results if r.applies)

    def reasons(self) -> list[str]:
        return [f"{r.name}: {r.reason}" for r in self.results if r.applies and not r.passed]


@dataclass(frozen=True)
class ToolCallChecks:
    """Every call's verdicts and the ``tool_choice`` verdict of one answer."""

    calls: tuple[CallCheck, ...]
    choice: ValidationResult

    @property
    def passed(self) -> bool:
        return self.choice.passed and all(c.passed for c in self.calls)

    def summary(self) -> ValidationSummary:
        """One result per check name over all calls, in :data:`CHECK_NAMES` order: a check
        applies when it applied to some call and fails with the first failing call's reason
        (``call <n> (<name>): ...``)."""
        merged: list[ValidationResult] = []
        for check in CHECK_NAMES[:-1]:
            results = [(c, r) for c in self.calls for r in c.results if r.name == check]
            applied = [(c, r) for c, r in results if r.applies]
            failed = [(c, r) for c, r in applied if not r.passed]
            if failed:
                call, result = failed[0]
                more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
                reason = f"call {call.index + 1} ({call.name}): {result.reason}{more}"
                merged.append(ValidationResult(check, True, False, reason))
            else:
                merged.append(ValidationResult(check, bool(applied), True))
        merged.append(self.choice)
        return ValidationSummary(tuple(merged))


def normalise_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` in JSON Schema: dialect type names mapped (``dict`` -> ``object``, ``float``
    -> ``number``, ``tuple`` -> ``array``, ``any`` -> no type constraint, case-insensitively),
    recursively through properties, items and combinators. Keywords JSON Schema does not know
    (BFCL's ``optional``) are kept; validators ignore them."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            mapped = _normalise_type(value)
            if mapped is not None:
                out["type"] = mapped
        elif key in _SUBSCHEMA and isinstance(value, Mapping):
            out[key] = normalise_schema(value)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [normalise_schema(v) if isinstance(v, Mapping) else v for v in value]
        elif key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {
                name: normalise_schema(v) if isinstance(v, Mapping) else v
                for name, v in value.items()
            }
        else:
            out[key] = value
    return out


def _normalise_type(value: Any) -> Any:
    if isinstance(value, list):
        names = [_normalise_type(v) for v in value]
        return None if None in names else names
    if not isinstance(value, str):
        return value
    if value in _JSON_TYPES:
        return value
    lowered = value.lower()
    if lowered in _JSON_TYPES:
        return lowered
    return _TYPE_NAMES.get(lowered)  # an unknown language type: no constraint


def offered_functions(tools: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The offered functions by name, each with its normalised ``parameters`` schema (an
    empty schema when none is given). Entries that are not functions are left out."""
    offered: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if tool.get("type", "function") != "function":
            continue
        function = tool.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            continue
        parameters = function.get("parameters")
        schema = normalise_schema(parameters) if isinstance(parameters, Mapping) else {}
        offered[function["name"]] = schema
    return offered


def parse_arguments(arguments: str) -> dict[str, Any]:
    """The arguments of a call as a JSON object; an empty text means no arguments.

    Raises ValueError with the reason when they are not a JSON object."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise ValueError(f"arguments are not JSON: {exc.msg} at character {exc.pos + 1}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"arguments are JSON but not an object ({type(value).__name__})")
    return value


def check_call(
    call: ToolCall, offered: Mapping[str, Mapping[str, Any]], index: int = 0
) -> CallCheck:
    """Whether ``call`` names an offered function, has JSON-object arguments and satisfies
    the function's schema (``offered`` as :func:`offered_functions` gives it). The schema
    check applies only to a known function with parseable arguments; a schema that is itself
    invalid passes, saying so."""
    schema = offered.get(call.name)
    if schema is None:
        known = ", ".join(sorted(offered)) or "none"
        name = ValidationResult("tool_name", True, False, f"not offered (offered: {known})")
    else:
        name = ValidationResult("tool_name", True, True)
    try:
        value = parse_arguments(call.arguments)
    except ValueError as exc:
        syntax = ValidationResult("tool_json", True, False, str(exc))
        skipped = ValidationResult("tool_schema", applies=False, passed=True)
        return CallCheck(index, call.name, (name, syntax, skipped))
    syntax = ValidationResult("tool_json", True, True)
    if schema is None:
        schema_result = ValidationResult("tool_schema", applies=False, passed=True)
    else:
        schema_result = _schema_result(value, schema)
    return CallCheck(index, call.name, (name, syntax, schema_result))


def _schema_result(value: dict[str, Any], schema: Mapping[str, Any]) -> ValidationResult:
    try:
        validator = _validator(json.dumps(schema, sort_keys=True, default=str))
    except jsonschema.SchemaError as exc:
        return ValidationResult("tool_schema", True, True, f"schema is invalid: {exc.message}")
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return ValidationResult("tool_schema", True, True)
    where = "/".join(str(p) for p in error.absolute_path)
    at = f" at {where}" if where else ""
    return ValidationResult("tool_schema", True, False, f"{error.message}{at}")


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Any:
    """A checked validator of a schema (by its canonical JSON): an answer's calls and a
    benchmark's many answers mostly share a few schemas, and checking one costs more than
    validating against it."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_tool_choice(tool_choice: Any, calls: Sequence[ToolCall]) -> ValidationResult:
    """``tool_choice`` against the calls made: ``"required"`` needs a call, a named function
    (``{"type": "function", "function": {"name": ...}}``) a call to it, ``"none"`` no call;
    ``"auto"`` and None constrain nothing (the check does not apply)."""
    if tool_choice is None or tool_choice == "auto":
        return ValidationResult("tool_choice", applies=False, passed=True)
    if tool_choice == "none":
        if calls:
            return ValidationResult("tool_choice", True, False, "tool_choice none, calls made")
        return ValidationResult("tool_choice", True, True)
    if tool_choice == "required":
        if not calls:
            return ValidationResult("tool_choice", True, False, "a tool call is required")
        return ValidationResult("tool_choice", True, True)
    forced = _forced_name(tool_choice)
    if forced is None:
        return ValidationResult("tool_choice", applies=False, passed=True)
    if not any(c.name == forced for c in calls):
        return ValidationResult("tool_choice", True, False, f"a call to {forced} is required")
    return ValidationResult("tool_choice", True, True)


def _forced_name(tool_choice: Any) -> str | None:
    if not isinstance(tool_choice, Mapping):
        return None
    function = tool_choice.get("function")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        return str(function["name"])
    return None


def check_tool_calls(
    tools: Sequence[Mapping[str, Any]], calls: Sequence[ToolCall], tool_choice: Any = None
) -> ToolCallChecks:
    """Check every call of an answer against the offered ``tools`` and ``tool_choice``."""
    offered = offered_functions(tools)
    checks = tuple(check_call(call, offered, index) for index, call in enumerate(calls))
    return ToolCallChecks(checks, check_tool_choice(tool_choice, calls))


def arguments_prefix_error(arguments: str) -> str | None:
    """Why a partial arguments text can no longer become a JSON object (None if it can)."""
    return json_prefix_error(arguments, require_object=True)


class ToolArgumentsDetector:
    """Watches the argument deltas of a streamed answer's tool calls (by call index, as
    OpenAI streams them) and says when a call's arguments can no longer become a JSON
    object; the reason starts ``tool_arguments:`` like other detectors' reasons."""

    name = "tool_arguments"

    def __init__(self) -> None:
        self._calls: dict[int, JsonPrefix] = {}

    def feed(self, index: int, delta: str) -> str | None:
        prefix = self._calls.setdefault(index, JsonPrefix(require_object=True))
        error = prefix.feed(delta)
        if error is None:
            return None
        return f"tool_arguments: call {index + 1} arguments cannot become JSON: {error}"

    def complete(self, index: int) -> bool:
        """Whether call ``index``'s arguments so far are a whole JSON object."""
        prefix = self._calls.get(index)
        return prefix is not None and prefix.complete
