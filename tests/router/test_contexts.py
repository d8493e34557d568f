"""An arm's identity features are computed once per arm and handed out as fresh dicts: what
one context adds to them (an escalation's ``action``) never reaches another."""

from __future__ import annotations

import math

from features.historical import HistoricalSignals
from features.query import QuerySignals
from features.system import ArmHealth, Spend
from router.contexts import arm_identity, build_context, escalation_context
from router.pool import Arm

CODER = Arm(
    name="coder",
    base_url="http://127.0.0.1:9/v1",
    model="coder-model",
    input_usd_per_mtok=1.0,
    output_usd_per_mtok=3.0,
    context_window=32_000,
    capabilities=frozenset({"tools", "json"}),
)
QUERY = QuerySignals(
    chars=10,
    tokens_est=3,
    language="en",
    code_blocks=0,
    code_hint=False,
    image_parts=0,
    depth=1,
    has_system=False,
    json_requested=False,
    schema_given=False,
    questions=0,
    complexity=0.1,
    categories={"code": 0.5},
)


def test_arm_identity_holds_name_price_window_and_capabilities() -> None:
    assert arm_identity(CODER) == {
        "arm": "coder",
        "log_price": round(math.log1p((1.0 + 3 * 3.0) / 4), 4),
        "log_window": round(math.log(32_000) / 10, 4),
        "cap_json": 1.0,
        "cap_tools": 1.0,
    }


def test_arm_identity_is_a_new_dict_each_time() -> None:
    first = arm_identity(CODER)
    first["action"] = "escalate"
    assert "action" not in arm_identity(CODER)
    escalation = escalation_context(
        QUERY, {}, (CODER,), {}, accept="accept", escalate=lambda name: f"escalate:{name}"
    )
    assert escalation.arms[1].namespaces["A"]["action"] == "escalate"
    context = build_context(
        (CODER,), QUERY, HistoricalSignals(), HistoricalSignals(), {"coder": ArmHealth()}, Spend()
    )
    assert "action" not in context.arms[0].namespaces["A"]
    assert context.arms[0].namespaces["A"] == arm_identity(CODER)


def test_an_arm_changed_in_the_pool_gets_its_new_identity() -> None:
    cheaper = CODER.model_copy(update={"output_usd_per_mtok": 0.5})
    assert arm_identity(cheaper)["log_price"] == round(math.log1p((1.0 + 3 * 0.5) / 4), 4)
    assert arm_identity(CODER)["log_price"] == round(math.log1p((1.0 + 3 * 3.0) / 4), 4)
