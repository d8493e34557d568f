"""Recorded prose as JSON: the demo pool's answer to requests that ask for JSON."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from router.tools.replay_pool.json_answers import json_answer

TEXT = "The answer is (B) because 42 is even."


def schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


def test_text_and_no_format_leave_the_answer_alone() -> None:
    assert json_answer(TEXT, None) is None
    assert json_answer(TEXT, {"type": "text"}) is None


def test_json_object_wraps_the_recorded_text() -> None:
    assert json.loads(json_answer(TEXT, {"type": "json_object"}) or "") == {"answer": TEXT}


def test_a_schema_instance_carries_the_text_and_a_number() -> None:
    schema = {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "choice": {"type": "string", "enum": ["A", "B", "C"]},
            "confidence": {"type": "number"},
            "steps": {"type": "array", "items": {"type": "string"}},
            "final": {"type": "boolean"},
        },
        "required": ["reasoning", "choice", "confidence"],
        "additionalProperties": False,
    }
    value = json.loads(json_answer(TEXT, schema_format(schema)) or "")
    jsonschema.validate(value, schema)
    assert value["reasoning"] == TEXT
    assert value["choice"] == "A"
    assert value["confidence"] == 42.0


def test_a_schema_no_instance_satisfies_falls_back_to_the_answer_object() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^x+$"}}}
    assert json.loads(json_answer(TEXT, schema_format(schema)) or "") == {"answer": TEXT}
