"""The generated reference pages: committed as the code renders them, and complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.pool import Pool
from router.settings import Settings
from router.tools import docs_reference
from router.tools.docs_reference import (
    PAGES,
    api_page,
    default_text,
    stale_pages,
    type_text,
    undocumented,
    write_pages,
)


def test_committed_pages_are_what_the_code_renders() -> None:
    stale = stale_pages()
    assert not stale, f"{', '.join(stale)} differ from the code: run `make docs` and commit"


@pytest.mark.parametrize("schema", [Settings, Pool], ids=["settings", "pool"])
def test_every_field_says_what_it_means(schema: type[Settings] | type[Pool]) -> None:
    assert undocumented(schema.model_json_schema()) == []


def test_a_field_without_description_is_reported() -> None:
    schema = {"title": "X", "properties": {"a": {"type": "integer"}, "b": {"description": "b"}}}
    assert undocumented(schema) == ["X.a"]


def test_every_setting_and_endpoint_is_on_its_page() -> None:
    settings = docs_reference.settings_page()
    for name in Settings.model_fields:
        if name != "replay":
            assert f"`SIGNALROUTE_{name.upper()}`" in settings
    assert "`SIGNALROUTE_REPLAY_JUDGE_ACCURACY`" in settings
    document = docs_reference.openapi_document()
    page = api_page(document)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in page


def test_types_and_defaults_in_words() -> None:
    choice = {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]}
    assert type_text(choice) == '`"a"` | `"b"` or null'
    assert type_text({"type": "array", "items": {"$ref": "#/$defs/Arm"}}) == "array of `Arm`"
    assert default_text({"default": None}) == "unset"
    assert default_text({"default": True}) == "`true`"
    assert default_text({"default": 60.0}) == "`60`"
    assert default_text({}, required=True) == "required"
    assert default_text({}) == "optional"


def test_write_pages_writes_what_is_stale(tmp_path: Path) -> None:
    assert sorted(write_pages(tmp_path)) == sorted(PAGES)
    assert stale_pages(tmp_path) == []
    assert write_pages(tmp_path) == []
    (tmp_path / "docs/reference/settings.md").write_text("edited by hand", encoding="utf-8")
    assert stale_pages(tmp_path) == ["docs/reference/settings.md"]
