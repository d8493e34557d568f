"""Which arm a failed answer is escalated to: by price until there is evidence, then by value.

The pool below is priced unlike RouterBench: ``frontier`` is the dearest arm and answers
worse than ``best``, which costs a fifth of it.
"""

from __future__ import annotations

import numpy as np

from learner.anchor import AnchorConfig, Evidence
from router.lifecycle.escalation import rule_target
from router.lifecycle.stages import escalate_action
from router.pool import Arm, parse_pool

POOL = parse_pool(
    {
        "arms": [
            {
                "name": "cheap",
                "base_url": "http://127.0.0.1:9/v1",
                "model": "cheap-1",
                "input_usd_per_mtok": 0.1,
                "output_usd_per_mtok": 0.2,
            },
            {
                "name": "frontier",
                "base_url": "http://127.0.0.1:9/v1",
                "model": "frontier-1",
                "input_usd_per_mtok": 15.0,
                "output_usd_per_mtok": 75.0,
            },
            {
                "name": "best",
                "base_url": "http://127.0.0.1:9/v1",
                "model": "best-1",
                "input_usd_per_mtok": 3.0,
                "output_usd_per_mtok": 15.0,
            },
        ]
    },
    source="test",
)
ANCHOR = AnchorConfig(min_evidence=20, z=1.5)


def targets() -> tuple[Arm, ...]:
    return tuple(POOL.arm(name) for name in POOL.escalation_arms())


def test_default_targets_are_every_arm_dearest_first() -> None:
    assert POOL.escalation_arms() == ("frontier", "best", "cheap")


def test_configured_targets_keep_their_order() -> None:
    pool = parse_pool(
        {**POOL.model_dump(), "escalation_targets": ["best", "frontier"]}, source="test"
    )
    assert pool.escalation_arms() == ("best", "frontier")


def test_without_evidence_the_rule_escalates_to_the_first_target() -> None:
    assert rule_target(targets(), Evidence(), ANCHOR).name == "frontier"


def test_with_evidence_the_rule_escalates_to_the_target_that_earned_most() -> None:
    evidence = Evidence()
    rng = np.random.default_rng(0)
    for _ in range(30):
        # What escalations to each target earned: the dearer, worse model earns less.
        evidence.add("failed|judged|cheap", escalate_action("frontier"), rng.uniform(0.4, 0.6))
        evidence.add("failed|judged|cheap", escalate_action("best"), rng.uniform(0.7, 0.9))
    assert rule_target(targets(), evidence, ANCHOR).name == "best"


def test_too_little_evidence_keeps_the_first_target() -> None:
    evidence = Evidence()
    for _ in range(ANCHOR.min_evidence - 1):
        evidence.add("failed|judged|cheap", escalate_action("best"), 0.9)
    assert rule_target(targets(), evidence, ANCHOR).name == "frontier"


def test_evidence_of_one_target_is_enough_to_prefer_it() -> None:
    """Only the rewarded targets compete: the dearest arm, never tried, is not assumed better
    than one whose escalations have a record."""
    evidence = Evidence()
    for _ in range(ANCHOR.min_evidence):
        evidence.add("failed|unjudged|cheap", escalate_action("best"), 0.5)
    assert rule_target(targets(), evidence, ANCHOR).name == "best"


def test_anchoring_off_means_the_first_target() -> None:
    evidence = Evidence()
    for _ in range(50):
        evidence.add("failed|judged|cheap", escalate_action("best"), 0.9)
    assert rule_target(targets(), evidence, None).name == "frontier"


def test_a_chain_tries_the_cheapest_other_target_before_the_first() -> None:
    """With a further step to follow, the rule keeps the first (strongest) target for it and
    climbs through a cheaper one first."""
    assert rule_target(targets(), Evidence(), ANCHOR, then=True).name == "cheap"


def test_a_chain_prefers_the_cheaper_target_that_earned_most() -> None:
    pool = parse_pool(
        {**POOL.model_dump(), "escalation_targets": ["best", "frontier", "cheap"]},
        source="test",
    )
    ladder = tuple(pool.arm(name) for name in pool.escalation_arms())
    evidence = Evidence()
    for _ in range(ANCHOR.min_evidence):
        evidence.add("failed|judged|cheap", escalate_action("frontier"), 0.8)
        evidence.add("failed|judged|cheap", escalate_action("cheap"), 0.3)
        evidence.add("failed|judged|cheap", escalate_action("best"), 0.9)
    # The strongest target earned most, but it is kept for the step after.
    assert rule_target(ladder, evidence, ANCHOR, then=True).name == "frontier"
    assert rule_target(ladder, evidence, ANCHOR).name == "best"


def test_a_last_step_or_a_single_target_is_not_a_ladder() -> None:
    only = (POOL.arm("best"),)
    assert rule_target(only, Evidence(), ANCHOR, then=True).name == "best"
    assert rule_target(targets(), Evidence(), None, then=True).name == "cheap"


def test_a_chain_that_climbed_every_configured_target_stops_there() -> None:
    """With ``escalation_targets`` configured, a chain that reached the last of them that
    can serve the request is not sent on to an arm left off the ladder (here ``frontier``,
    dearer and worse); a pool without configured targets, or whose targets cannot serve the
    request at all, still falls back to every arm not cheaper than the answering one."""
    from types import SimpleNamespace

    from router.lifecycle.escalation import escalation_targets

    laddered = parse_pool(
        {**POOL.model_dump(), "escalation_targets": ["best", "cheap"]}, source="test"
    )

    def names(pool: object, answered_by: str, eligible: set[str], tried: set[str]) -> list[str]:
        kit = SimpleNamespace(pool=pool)
        arms = escalation_targets(kit, answered_by, eligible, tried)  # type: ignore[arg-type]
        return [arm.name for arm in arms]

    assert names(laddered, "cheap", {"frontier", "best"}, set()) == ["best"]
    assert names(laddered, "best", {"frontier"}, {"cheap"}) == []  # the ladder is climbed
    assert names(laddered, "cheap", {"frontier"}, set()) == ["frontier"]  # targets can't serve
    assert names(POOL, "best", {"frontier"}, {"cheap"}) == ["frontier"]  # none configured


def test_an_answer_of_the_strongest_target_is_not_escalated_down() -> None:
    """The first of the configured targets is the top of the ladder: its answer, first or
    a chain's step, has no stronger arm to go to, so it is not sent to the weaker targets
    below it (each step of the rule is to a stronger arm); the others still climb."""
    from types import SimpleNamespace

    from router.lifecycle.escalation import escalation_targets

    laddered = parse_pool(
        {**POOL.model_dump(), "escalation_targets": ["best", "cheap"]}, source="test"
    )
    kit = SimpleNamespace(pool=laddered)
    top = escalation_targets(kit, "best", {"cheap", "frontier"}, set())  # type: ignore[arg-type]
    assert top == ()
    climbs = escalation_targets(kit, "cheap", {"best", "frontier"}, set())  # type: ignore[arg-type]
    assert [arm.name for arm in climbs] == ["best"]
    off_ladder = escalation_targets(kit, "frontier", {"best", "cheap"}, set())  # type: ignore[arg-type]
    assert [arm.name for arm in off_ladder] == ["best", "cheap"]
