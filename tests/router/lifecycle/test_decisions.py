"""The decider with rule anchoring: a rule's action, evidence gathered as decisions settle."""

from typing import Any

import numpy as np

from learner.context import ArmFeatures, Context
from router.lifecycle.decisions import Decider, Rule
from router.lifecycle.journal import Journal
from tests.router.lifecycle.fakes import FixedPolicies

ARMS = ("cheap", "strong")


def _context() -> Context:
    return Context(
        shared={"Q": {"x": 1.0}}, arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in ARMS)
    )


async def test_rewards_become_evidence_even_before_the_rule_has_an_action() -> None:
    policies = FixedPolicies()
    decider = Decider(policies, np.random.default_rng(0))  # type: ignore[arg-type]
    journal = Journal("request", "t", None)
    for _ in range(30):
        drawn = decider.draw(journal, "pre", _context(), Rule(None, "category:code"))
        assert drawn.bucket == "category:code"
        await decider.settle(journal, drawn, 1.0 if drawn.action == "strong" else 0.2)
    evidence = policies.evidence("pre")
    assert evidence.count("category:code", "cheap") + evidence.count("category:code", "strong")
    assert len(policies.learned) == 30  # the policy learned from every one as well


async def test_a_frozen_stage_takes_the_rules_action_over_the_policys_liking() -> None:
    policies: Any = FixedPolicies()
    frozen = Decider(policies, np.random.default_rng(0), learn=False)
    journal = Journal("request", "t", None)
    drawn = frozen.draw(journal, "pre", _context(), Rule("strong", "category:code"))
    assert drawn.action == "strong"
    assert drawn.probability == 1.0
    assert drawn.pmf == {"cheap": 0.0, "strong": 1.0}
    unanchored = Decider(policies, np.random.default_rng(0), learn=False, anchor=None)
    assert unanchored.draw(journal, "pre", _context(), Rule("strong", "x")).action == "cheap"
    await frozen.settle(journal, drawn, 0.5)
    assert policies.learned == []  # a frozen decider learns nothing, and gathers no evidence
    assert policies.evidence("pre").count("category:code", "strong") == 0
