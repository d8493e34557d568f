from typing import Any

import pytest

from features.errors import NoEligibleArmError
from features.system import ArmHealth
from router.constraints import Constraints, eligible_arms, request_needs
from router.pool import Arm


def arm(name: str, **extra: Any) -> Arm:
    return Arm(name=name, base_url="http://x.invalid/v1", model=name, **extra)


ARMS = (
    arm("chat"),
    arm("agent", capabilities=frozenset({"tools"}), serves_only=frozenset({"tools"})),
)


def test_an_arm_that_serves_only_tool_requests_is_masked_for_plain_ones() -> None:
    health = {a.name: ArmHealth() for a in ARMS}
    plain = eligible_arms(ARMS, health, Constraints(), 100, 100)
    assert plain.eligible == ("chat",)
    assert plain.masked["agent"] == "serves only requests that need tools"
    tools = Constraints().with_needs(request_needs([], tools=True))
    agentic = eligible_arms(ARMS, health, tools, 100, 100)
    assert agentic.eligible == ("agent",)
    assert "lacks capability tools" in agentic.masked["chat"]


def test_an_arm_that_serves_only_tool_requests_alone_is_no_arm_for_plain_ones() -> None:
    with pytest.raises(NoEligibleArmError, match="serves only requests that need tools"):
        eligible_arms(ARMS[1:], {"agent": ArmHealth()}, Constraints(), 100, 100)
