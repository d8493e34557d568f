"""Immediate output checks: is the answer usable, and in the format the caller asked for?

These run on every completion and give the quality the immediate reward is shaped from.
Validators and the judge of the post-generation stage refine it later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

_FENCED_JSON = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class CheckResult:
    """Quality in [0, 1] and the reasons it is below 1."""

    quality: float
    problems: tuple[str, ...] = ()


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
    raise ValueError("output is not JSON")


def check_output(
    text: str, finish_reason: str | None, response_format: Mapping[str, Any] | None
) -> CheckResult:
    """Usable (non-empty, not truncated) and, when JSON was requested, valid JSON/schema."""
    if not text.strip():
        return CheckResult(0.0, ("empty output",))
    problems: list[str] = []
    quality = 1.0
    if finish_reason == "length":
        problems.append("truncated at max_tokens")
        quality = 0.5
    kind = (response_format or {}).get("type")
    if kind in ("json_object", "json_schema"):
        try:
            value = extract_json(text)
        except ValueError as exc:
            return CheckResult(0.0, (*problems, str(exc)))
        schema = ((response_format or {}).get("json_schema") or {}).get("schema")
        if kind == "json_schema" and isinstance(schema, Mapping):
            try:
                jsonschema.validate(value, dict(schema))
            except jsonschema.ValidationError as exc:
                return CheckResult(0.0, (*problems, f"schema violation: {exc.message}"))
            except jsonschema.SchemaError as exc:
                problems.append(f"the requested schema is invalid: {exc.message}")
    return CheckResult(quality, tuple(problems))
