import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.json_prefix import JsonPrefix, json_prefix_error

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def strictly_json(text: str) -> bool:
    """Whether Python's parser, refusing its NaN/Infinity extensions, takes ``text``."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True


@given(JSON_VALUES, st.booleans())
def test_every_prefix_of_a_json_document_is_viable(value: Any, indent: bool) -> None:
    text = json.dumps(value, indent=2 if indent else None, ensure_ascii=False)
    checker = JsonPrefix()
    for char in text:
        assert checker.feed(char) is None, text
    assert checker.complete
    assert json_prefix_error(text) is None


@given(st.text(alphabet='{}[]",:.-+eE0123 \\utrfalsn\n', max_size=14))
def test_complete_means_what_a_strict_parser_says(text: str) -> None:
    checker = JsonPrefix()
    checker.feed(text)
    assert checker.complete == strictly_json(text), text
    if checker.error is None and not checker.complete:  # some continuation must exist
        assert _completion(text, depth=30) is not None, text


def _completion(text: str, depth: int) -> str | None:
    """A tail that makes ``text`` strict JSON (depth-first, pruned where no JSON can follow)."""
    if strictly_json(text):
        return ""
    if depth == 0:
        return None
    for char in '"}]0:ruelas':
        if json_prefix_error(text + char) is None:
            tail = _completion(text + char, depth - 1)
            if tail is not None:
                return char + tail
    return None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"flag": True}', "expected a JSON value, got 'T' at character 10"),
        ("{'a': 1}", 'expected a key in double quotes, got "\'" at character 2'),
        ('{"a": 1,}', "expected a key in double quotes, got '}' at character 9"),
        ('{"a" 1}', "expected ':' after a key, got '1' at character 6"),
        ('{"a": 01}', "a number cannot have a leading zero at character 8"),
        ('{"a": 1.}', "expected a digit after '.', got '}' at character 9"),
        ('{"a": -}', "expected a digit after '-', got '}' at character 8"),
        ('{"a": nul!', "expected 'null', got '!' at character 10"),
        ('{"a": NaN}', "expected a JSON value, got 'N' at character 7"),
        ('{"a": "x\\q"}', "invalid escape '\\q' at character 10"),
        ('{"a": "\\u12g4"}', "invalid \\u escape ('g' is not hexadecimal) at character 12"),
        ('{"a": "line\nbreak"}', "unescaped control character '\\n' in a string at character 12"),
        ('{"a": [1, 2}', "expected ',' or ']', got '}' at character 12"),
        ('{"a": 1}}', "text after the JSON value ended ('}') at character 9"),
        ('{"a": 1} x', "text after the JSON value ended ('x') at character 10"),
    ],
)
def test_the_first_impossible_character_is_named(text: str, where: str) -> None:
    assert json_prefix_error(text) == where
    assert not strictly_json(text)


@pytest.mark.parametrize(
    "text", ["", "  ", "{", '{"a', '{"a":', '{"a": -', '{"a": 1.5e', '{"a": [tr', '{"a": "\\u00']
)
def test_unfinished_documents_stay_viable(text: str) -> None:
    checker = JsonPrefix(require_object=True)
    assert checker.feed(text) is None
    assert not checker.complete


def test_require_object_refuses_other_documents() -> None:
    assert json_prefix_error("[1]", require_object=True) == (
        "expected a JSON object, got '[' at character 1"
    )
    assert json_prefix_error(' "x"', require_object=True) is not None
    assert json_prefix_error("[1]") is None


def test_a_number_at_the_top_is_complete_only_once_whole() -> None:
    for text, complete in [("12", True), ("-", False), ("1.", False), ("1e5", True), ("0 ", True)]:
        checker = JsonPrefix()
        assert checker.feed(text) is None
        assert checker.complete is complete, text


def test_deltas_are_equivalent_to_the_whole_text_and_the_first_error_stays() -> None:
    text = '{"start": "New York", "allow_transfer": True, "x": 1}'
    checker = JsonPrefix(require_object=True)
    errors = [checker.feed(text[i : i + 5]) for i in range(0, len(text), 5)]
    first = next(e for e in errors if e is not None)
    assert first == json_prefix_error(text) == "expected a JSON value, got 'T' at character 41"
    assert errors[-1] == first
    assert checker.feed("}") == first
    assert not checker.complete
