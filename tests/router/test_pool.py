from pathlib import Path

import pytest
from pydantic import ValidationError

from features.errors import ConfigError
from router.pool import Objective, demo_pool, load_pool

GOOD = """
objective: {lambda_cost: 0.2}
arms:
  - name: small
    base_url: http://localhost:9000/v1
    model: small-1
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.2
    capabilities: [code]
  - {name: big, base_url: "https://api.example.com/v1/", model: big-2, api_key_env: BIG_KEY}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    return path


def test_load_valid_pool(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, GOOD))
    assert pool.names == ("small", "big")
    assert pool.arm("big").base_url == "https://api.example.com/v1"
    assert pool.arm("small").capabilities == frozenset({"code"})
    assert pool.objective.lambda_cost == 0.2
    assert pool.arm("small").price_usd(1_000_000, 1_000_000) == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arms: []", "arms: Tuple should have at least 1 item"),
        (
            GOOD.replace("input_usd_per_mtok: 0.1", "input_usd_per_mtok: -1"),
            "arms.0.input_usd_per_mtok: Input should be greater than or equal to 0",
        ),
        (GOOD.replace("http://localhost:9000/v1", "localhost:9000"), "arms.0.base_url"),
        (GOOD.replace("name: small", "name: big"), "repeated: big"),
        (
            GOOD.replace("model: small-1", "model: small-1\n    colour: red"),
            "arms.0.colour: Extra inputs are not permitted",
        ),
        ("arms: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_pool_names_field_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pool(write(tmp_path, text))
    assert message in caught.value.message
    assert "pool.yaml" in caught.value.message


def test_missing_pool_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read pool file"):
        load_pool(tmp_path / "absent.yaml")


def test_demo_pool_binds_its_own_address() -> None:
    pool = demo_pool().bind_self("http://127.0.0.1:8123")
    assert len(pool.arms) == 14
    tools = [arm.name for arm in pool.arms if "tools" in arm.capabilities]
    assert tools == ["gpt-4o-2024-08-06-FC", "gpt-4o-mini-2024-07-18-FC", "gpt-3.5-turbo-0125-FC"]
    assert all(a.base_url == "http://127.0.0.1:8123/replay/v1" for a in pool.arms)


PROFILES = (
    GOOD
    + """
profiles:
  thrifty:
    arms: [small]
    objective: {lambda_cost: 0.9}
    stages: {escalation: false}
  auto:
    description: the file's own auto
"""
)


def test_profiles_name_arm_subsets_objectives_and_stages(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, PROFILES))
    assert pool.profile_ids == ("signalroute/auto", "signalroute/thrifty")
    thrifty = pool.profile("signalroute/thrifty")
    assert thrifty is not None
    assert thrifty.arms == ("small",)
    assert thrifty.objective is not None
    assert thrifty.objective.lambda_cost == 0.9
    values = thrifty.stage_values(pool.stages)
    assert values["escalation"] is False
    assert values["judge"] == pool.stages.judge  # unset options come from the pool
    auto = pool.profile("signalroute/auto")
    assert auto is not None
    assert auto.description == "the file's own auto"
    assert pool.profile("small") is None
    assert pool.profile("signalroute/absent") is None


def test_auto_exists_without_a_profiles_section(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, GOOD))
    assert pool.profile_ids == ("signalroute/auto",)
    auto = pool.profile("signalroute/auto")
    assert auto is not None
    assert auto.arms is None
    assert auto.objective is None


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ("  cheap: {arms: [tiny]}", "profile 'cheap' names arms the pool does not have: tiny"),
        ("  cheap: {arms: [small, small]}", "profile 'cheap' lists an arm twice"),
        ("  cheap: {arms: []}", "profiles.cheap.arms"),
        ("  Cheap Ones: {}", "profiles.Cheap Ones"),
        ("  cheap: {stream: sometimes}", "profiles.cheap.stream"),
    ],
)
def test_invalid_profiles_are_named(tmp_path: Path, profiles: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pool(write(tmp_path, GOOD + "profiles:\n" + profiles + "\n"))
    assert message in caught.value.message


def test_arm_names_may_not_take_the_profile_prefix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="may not start with 'signalroute/'"):
        load_pool(write(tmp_path, GOOD.replace("name: small", "name: signalroute/small")))


def test_an_objective_may_carry_its_own_latency_budget() -> None:
    pool = demo_pool()
    assert pool.objective.latency_reference_ms(10_000.0) == 10_000.0
    responsive = pool.profiles["responsive"].objective
    assert responsive is not None
    assert responsive.latency_reference_ms(10_000.0) == 2_000.0
    assert responsive.lambda_latency == 0.3
    with pytest.raises(ValidationError, match="latency_ref_ms"):
        Objective(latency_ref_ms=0)
