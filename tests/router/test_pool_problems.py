"""A bad pool file is reported whole: every problem at once, each saying what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from router.pool import (
    StageDefaults,
    load_pool,
    parse_pool,
    unset_key_variables,
    validate_pool,
)
from router.pool_problems import API_KEY_HINT, Problem, describe_problems

BAD = """
escalation_targets: [gpt-9]
arms:
  - name: a
    model: m
    api_key: sk-live-123
  - name: b
    base_url: ftp://example.com
    model: m
    modle: typo
    input_usd_per_mtok: -1
profiles:
  cheap: {arms: [a, zz]}
"""


def test_every_problem_of_a_bad_file_is_listed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_pool(path)
    message = caught.value.message
    assert message.startswith(f"{path}: 7 problems:\n")
    lines = message.splitlines()[1:]
    assert lines == [
        "  - arms.0.base_url: Field required",
        f"  - arms.0.api_key: Extra inputs are not permitted: {API_KEY_HINT}",
        "  - arms.1.base_url: must start with http:// or https:// (or {self} for this router)",
        "  - arms.1.input_usd_per_mtok: Input should be greater than or equal to 0",
        "  - arms.1.modle: Extra inputs are not permitted (did you mean model?)",
        "  - escalation_targets: escalation_targets name unknown arms: gpt-9",
        "  - profiles.cheap.arms: profile 'cheap' names arms the pool does not have: zz",
    ]
    assert "sk-live-123" not in message  # the key itself is never echoed


def test_a_literal_key_in_the_judge_points_to_api_key_env() -> None:
    document = {
        "arms": [{"name": "a", "base_url": "http://x/v1", "model": "m"}],
        "judge": {"name": "j", "base_url": "http://x/v1", "model": "m", "api_key": "sk"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_pool(document, source="pool.yaml")
    assert caught.value.message == (
        f"pool.yaml: judge.api_key: Extra inputs are not permitted: {API_KEY_HINT}"
    )
    assert "api_key_env" in caught.value.message


def test_unknown_fields_suggest_the_field_meant_or_list_the_known_ones() -> None:
    document = {
        "arms": [{"name": "a", "base_url": "http://x/v1", "model": "m"}],
        "objective": {"lambda_cots": 0.1},
        "stages": {"zebra": 1},
    }
    _, problems = validate_pool(document)
    assert [p.line() for p in problems] == [
        "objective.lambda_cots: Extra inputs are not permitted (did you mean lambda_cost?)",
        "stages.zebra: Extra inputs are not permitted (known fields: "
        + ", ".join(StageDefaults.model_fields)
        + ")",
    ]
    assert "max_escalations" in StageDefaults.model_fields  # the list names the real fields


def test_cross_references_alone_are_all_reported() -> None:
    document = {
        "arms": [{"name": "a", "base_url": "http://x/v1", "model": "m"}],
        "escalation_targets": ["b"],
        "profiles": {"p": {"arms": ["a", "a"]}, "q": {"arms": ["c"]}},
    }
    pool, problems = validate_pool(document)
    assert pool is None
    assert [p.line() for p in problems] == [
        "escalation_targets: escalation_targets name unknown arms: b",
        "profiles.p.arms: profile 'p' lists an arm twice",
        "profiles.q.arms: profile 'q' names arms the pool does not have: c",
    ]


def test_a_document_that_is_no_mapping_is_one_problem() -> None:
    pool, problems = validate_pool(["arms"])
    assert pool is None
    assert len(problems) == 1
    assert problems[0].where == "(top level)"


def test_unset_key_variables_are_warnings_naming_the_arm_and_variable() -> None:
    pool = parse_pool(
        {
            "arms": [
                {"name": "a", "base_url": "http://x/v1", "model": "m", "api_key_env": "A_KEY"},
                {"name": "b", "base_url": "http://x/v1", "model": "m", "api_key_env": "B_KEY"},
                {"name": "c", "base_url": "http://x/v1", "model": "m"},
            ],
            "judge": {"name": "j", "base_url": "http://x/v1", "model": "m", "api_key_env": "J"},
        },
        source="pool.yaml",
    )
    problems = unset_key_variables(pool, {"B_KEY": "sk-b", "J": ""})
    assert problems == (
        Problem(
            "arms.0.api_key_env",
            "a: the environment variable A_KEY is not set, so its calls carry no API key",
            "warning",
        ),
        Problem(
            "judge.api_key_env",
            "j: the environment variable J is not set, so its calls carry no API key",
            "warning",
        ),
    )


def test_one_problem_is_one_line() -> None:
    assert describe_problems("f.yaml", [Problem("arms", "empty")]) == "f.yaml: arms: empty"
