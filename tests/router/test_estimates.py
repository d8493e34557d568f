"""Per-arm estimates grouped by the query's task category and hints."""

from __future__ import annotations

from learner.config import PolicyConfig
from learner.context import ArmFeatures, Context
from learner.estimates import LoggedOutcome
from learner.vw_policy import ArmScores, VWPolicy
from router.estimates import context_groups, estimate_outcomes

ARMS = ("coder", "writer")


def context(query: dict[str, float | str]) -> Context:
    return Context(
        shared={"Q": query, "H": {"neighbours": 1.0}},
        arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in ARMS),
    )


def test_a_context_belongs_to_its_strongest_category_and_each_hint() -> None:
    query: dict[str, float | str] = {
        "cat_code": 0.7,
        "cat_chat": 0.2,
        "hint_task": "sql",
        "hint_tier": "gold",
        "language": "en",
    }
    assert context_groups(context(query)) == ["category:code", "hint:task=sql", "hint:tier=gold"]
    assert context_groups(context({"cat_code": 0.0, "cat_chat": 0.0})) == []
    assert context_groups(context({"log_tokens": 2.0})) == []
    assert context_groups(Context(shared={}, arms=(ArmFeatures("coder"),))) == []


def test_groups_hold_their_decisions_most_first_and_each_context_is_scored_once() -> None:
    class CountingPolicy:
        def __init__(self) -> None:
            self.policy = VWPolicy("pre", PolicyConfig(seed=1))
            self.calls = 0

        def scores(self, ctx: Context) -> ArmScores:
            self.calls += 1
            return self.policy.scores(ctx)

    code = context({"cat_code": 0.9, "hint_task": "sql"})
    chat = context({"cat_chat": 0.8})
    outcomes = [
        LoggedOutcome(code, "coder", 1.0),
        LoggedOutcome(code, "coder", 0.5),
        LoggedOutcome(chat, "writer", 0.9),
        LoggedOutcome(context({"log_tokens": 1.0}), "writer", None),
    ]
    scorer = CountingPolicy()
    estimates = estimate_outcomes("pre", 10, scorer, outcomes, arms=ARMS)

    assert estimates.decisions == 4
    assert [(g.group, g.decisions) for g in estimates.groups] == [
        ("category:code", 2),
        ("hint:task=sql", 2),
        ("category:chat", 1),
    ]
    code_group = {a.arm: a for a in estimates.groups[0].arms}
    assert code_group["coder"].decisions == 2
    assert code_group["coder"].observed_reward == 0.75
    assert code_group["writer"].decisions == 0
    assert scorer.calls == len({id(o.context) for o in outcomes})  # 3: `code` is logged twice
    assert estimates.as_json()["groups"][2]["arms"][1]["observed_reward"] == 0.9
