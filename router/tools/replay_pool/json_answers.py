"""Recorded prose answers as JSON, for requests that ask for JSON with ``response_format``.

RouterBench recorded free-text answers. A JSON-mode request (``json_object``) gets the
recorded answer as ``{"answer": "<recorded text>"}``; a ``json_schema`` request gets an
instance of its schema built from the recorded text: the first string the schema asks for
holds the text, numbers take the last number in it, and every other value is the simplest
one the schema allows. When no instance can be built (the schema uses keywords this builder
does not follow, or the instance fails it), the answer is the ``{"answer": ...}`` object,
which the router's validators then find failing the schema, as a real model's can.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def json_answer(text: str, response_format: Mapping[str, Any] | None) -> str | None:
    """``text`` as the JSON the response format asks for; None when it asks for none."""
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return json.dumps({"answer": text})
    if kind != "json_schema":
        return None
    spec = (response_format or {}).get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        return json.dumps({"answer": text})
    instance = _Builder(text).build(schema)
    try:
        jsonschema.validate(instance, dict(schema))
    except (jsonschema.ValidationError, jsonschema.SchemaError):
        return json.dumps({"answer": text})
    return json.dumps(instance)


class _Builder:
    """Builds one instance of a schema; the recorded text goes into the first string."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._text_used = False
        numbers = _NUMBER.findall(text)
        self._number = float(numbers[-1]) if numbers else 0.0

    def build(self, schema: Mapping[str, Any]) -> Any:
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for combinator in ("anyOf", "oneOf", "allOf"):
            options = schema.get(combinator)
            if isinstance(options, list) and options and isinstance(options[0], Mapping):
                return self.build(options[0])
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema)
        if kind == "array":
            items = schema.get("items")
            count = int(schema.get("minItems", 0) or 0)
            if isinstance(items, Mapping) and (count or not self._text_used):
                return [self.build(items) for _ in range(max(count, 1))]
            return [None] * count
        if kind == "string":
            return self._string()
        if kind == "integer":
            return int(self._number)
        if kind == "number":
            return self._number
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        return self._string()

    def _object(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        names = list(required) if isinstance(required, list) else []
        names += [name for name in properties if name not in names]
        return {
            name: self.build(properties.get(name) or {})
            for name in names
            if isinstance(properties.get(name, {}), Mapping)
        }

    def _string(self) -> str:
        if self._text_used:
            return ""
        self._text_used = True
        return self._text
