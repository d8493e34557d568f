"""Which decisions a request's feedback rewards: the ones that shaped the delivered answer."""

import uuid
from datetime import UTC, datetime

from router.feedback import credited_decisions
from store.records import DecisionRecord


def decision(stage: str, arm: str) -> DecisionRecord:
    return DecisionRecord(
        id=uuid.uuid4(),
        request_id=uuid.UUID(int=1),
        stage=stage,
        context={},
        arms=(arm,),
        chosen_arm=arm,
        probability=1.0,
        pmf={arm: 1.0},
        policy_name=stage,
        policy_version=0,
        created_at=datetime.now(UTC),
    )


def arms(decisions: list[DecisionRecord]) -> list[tuple[str, str]]:
    return [(d.stage, d.chosen_arm) for d in decisions]


def test_the_last_generation_and_the_escalation_that_delivered_are_credited() -> None:
    cut, rerouted = decision("pre", "a"), decision("in", "b")
    component = decision("component", "c")
    accepted = [cut, rerouted, decision("post", "accept"), component]
    assert arms(credited_decisions(accepted)) == [
        ("in", "b"),
        ("post", "accept"),
        ("component", "c"),
    ]
    single = [cut, decision("post", "escalate:gpt-4")]
    assert arms(credited_decisions(single)) == [("pre", "a"), ("post", "escalate:gpt-4")]


def test_a_chain_credits_the_step_whose_answer_was_delivered_and_what_followed() -> None:
    chain = [
        decision("pre", "a"),
        decision("post", "escalate:b"),  # b's answer was escalated again: not credited
        decision("post", "escalate:c"),
        decision("post", "accept"),
    ]
    assert arms(credited_decisions(chain)) == [
        ("pre", "a"),
        ("post", "escalate:c"),
        ("post", "accept"),
    ]
