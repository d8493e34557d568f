"""The request path's JSON: the standard library's JSON, faster, with its answers where
orjson has none."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from features import json_codec

BODY = {
    "id": "7f1c",
    "output": "Voilà: 2 + 2 = 4 \u2014 \U0001f600",
    "cost_usd": 7.5e-05,
    "latency_ms": 38.7,
    "format_error": None,
    "trace": {"pmf": {"a": 0.9090909009630025, "b": 1e-300}, "parts": [1, True, [], {}]},
}


def standard(value: object) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def test_a_body_renders_the_values_the_standard_library_renders() -> None:
    rendered = json_codec.dumps(BODY)
    assert json.loads(rendered) == json.loads(standard(BODY)) == BODY
    assert b" " not in json_codec.dumps(dict(BODY, output="x"))  # compact, as Starlette's
    assert "Voilà".encode() in rendered  # UTF-8, not escaped


def test_keys_and_numbers_the_standard_library_takes_are_taken() -> None:
    assert json.loads(json_codec.dumps({1: "one", 2.5: "half"})) == {"1": "one", "2.5": "half"}
    assert json.loads(json_codec.dumps({"x": np.float64(0.25), "n": np.int64(3)})) == {
        "x": 0.25,
        "n": 3,
    }
    big = {"n": 2**70}  # past orjson's 64 bits: the standard library renders it
    assert json_codec.dumps(big) == standard(big)


def test_a_nan_renders_as_null() -> None:
    assert json.loads(json_codec.dumps({"x": math.nan, "y": math.inf})) == {"x": None, "y": None}


def test_parsing_answers_as_the_standard_library() -> None:
    text = standard(BODY).decode()
    assert json_codec.loads(text) == json.loads(text)
    assert math.isnan(json_codec.loads('{"x": NaN}')["x"])
    with pytest.raises(json.JSONDecodeError):
        json_codec.loads("{not json")


class _Mode(enum.StrEnum):
    FAST = "fast"


class _Count(int):
    pass


@dataclasses.dataclass
class _Row:
    n: int


STORED = [  # what the writer hands the store: contexts, PMFs, messages, parameters
    {"Q": {"log_tokens": 2.3979, "lang": "fr", "cat_code": 0.4121}, "H": {"neighbours": 3.0445}},
    {"gpt-4": 0.9090909009630025, "small": 1e-300, "mid": 7.5e-05, "big": 1e16},
    [{"role": "user", "content": 'Voilà \u2014 \U0001f600 "quoted" \\ back\nslash'}],
    {"temperature": 0.2, "max_tokens": 512, "stream": True, "stop": ["\n\n", "</s>"]},
]


@pytest.mark.parametrize("value", STORED)
def test_a_stored_value_is_the_standard_librarys_json(value: object) -> None:
    rendered = json_codec.dumps_for_store(value)
    assert isinstance(rendered, bytes)  # orjson's: the fast path
    assert json.loads(rendered) == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    "value",
    [
        {"x": float("nan")},  # refused by Postgres, as before: a row that fails, not a null
        {"x": [1.0, math.inf]},
        {"content": None, "tool_calls": []},  # a real null: the standard library's text
        {"note": "nullable"},
        {"big": 2**70},
        {7: "an int key", 7.5e-05: "a float key", False: "a bool key"},  # keys as json writes
        {"mode": _Mode.FAST, "count": _Count(3)},  # subclasses of str and int, as json does
    ],
)
def test_a_value_orjson_would_render_otherwise_is_the_standard_librarys(value: object) -> None:
    assert json_codec.dumps_for_store(value) == json.dumps(value)


@pytest.mark.parametrize(
    "value",
    [{"x": np.float32(0.5)}, {"when": datetime.now(UTC)}, {"row": _Row(1)}],
)
def test_a_value_the_standard_library_refuses_is_refused_as_before(value: object) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        json_codec.dumps_for_store(value)
