"""The core request refuses what the HTTP layer refuses, for callers that build it directly."""

import pytest

from learner.reward import RewardWeights
from router.lifecycle.request import RouteRequest
from router.lifecycle.stages import StageOptions


def test_a_request_with_bad_hints_cannot_be_built() -> None:
    messages = ({"role": "user", "content": "hi"},)
    assert RouteRequest(messages, RewardWeights(), hints={"task": "sql"}).hints == {"task": "sql"}
    with pytest.raises(ValueError, match="hint 'task' must be a string"):
        RouteRequest(messages, RewardWeights(), hints={"task": None})  # type: ignore[dict-item]


def test_stage_options_need_one_escalation_step_at_least() -> None:
    assert StageOptions(max_escalations=3).max_escalations == 3
    with pytest.raises(ValueError, match="max_escalations must be at least 1"):
        StageOptions(max_escalations=0)
