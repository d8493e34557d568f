"""A conversation's next turn and the arm of its previous one, through the ``openai``
client: found by the messages (in memory, and in the store after a restart) or by the
session; a feature of the draw, a cost when the turn leaves it, or a pin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openai.types.chat import ChatCompletion

from tests.router.fake_openai import FakeOpenAI
from tests.router.service.conftest import ServiceFactory
from tests.router.service.test_openai_client import openai_client

POOL = """
arms:
  - {name: one, base_url: "{self}/replay/v1", model: one}
  - {name: two, base_url: "{self}/replay/v1", model: two}
  - {name: three, base_url: "{self}/replay/v1", model: three}
stages: {escalation: false, components: false, judge: never}
profiles:
  agent: {conversation: pin}
  loose: {conversation: free}
  costly: {switch_cost: 0.3}
"""
UNIFORM = {"exploration": "epsilon", "epsilon": 1.0}  # seeded draws, uniform over the arms


def pre(completion: ChatCompletion) -> dict[str, Any]:
    decision: dict[str, Any] = (completion.model_extra or {})["signalroute"]["trace"]["decisions"][
        0
    ]
    return decision


def next_turn(first: list[Any], answer: ChatCompletion, text: str) -> list[Any]:
    reply = {"role": "assistant", "content": answer.choices[0].message.content}
    return [*first, reply, {"role": "user", "content": text}]


async def test_the_previous_turns_arm_is_a_feature_and_leaving_it_costs(
    service: ServiceFactory, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    fake = FakeOpenAI()
    async with service(pool_config=pool, provider_app=fake.app(), **UNIFORM) as client:
        api = openai_client(client)
        seen: list[tuple[ChatCompletion, ChatCompletion]] = []
        for i in range(10):
            first: list[Any] = [{"role": "user", "content": f"Plan trip {i}."}]
            answer = await api.chat.completions.create(model="signalroute/costly", messages=first)
            then = await api.chat.completions.create(
                model="signalroute/costly", messages=next_turn(first, answer, "And day two?")
            )
            seen.append((answer, then))
        loose_first: list[Any] = [{"role": "user", "content": "Plan a loose trip."}]
        loose = await api.chat.completions.create(model="signalroute/loose", messages=loose_first)
        loose_then = await api.chat.completions.create(
            model="signalroute/loose", messages=next_turn(loose_first, loose, "More?")
        )
    switched = stayed = 0
    for answer, then in seen:
        decision = pre(then)
        assert decision["details"]["previous_turn_arm"] == answer.model
        features = decision["signals"]["arm"]["A"]
        assert ("prev_turn" in features) == (then.model == answer.model)
        assert "prev_turn" not in pre(answer)["signals"]["arm"]["A"]
        if then.model == answer.model:
            stayed += 1
            assert "switch_cost" not in decision["details"]
        else:
            switched += 1
            assert decision["details"]["switch_cost"] == 0.3
            first_reward = pre(answer)["reward"]  # same fake answer quality, no switch
            assert decision["reward"] < first_reward
    assert switched, (switched, stayed)
    assert stayed, [(a.model, t.model) for a, t in seen]
    assert "previous_turn_arm" not in pre(loose_then)["details"]


async def test_a_pinned_conversation_stays_found_by_messages_session_or_store(
    service: ServiceFactory, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    fake = FakeOpenAI()
    first: list[Any] = [{"role": "user", "content": "Book a table."}]
    async with service(pool_config=pool, provider_app=fake.app(), **UNIFORM) as client:
        api = openai_client(client)
        answer = await api.chat.completions.create(
            model="signalroute/agent", messages=first, extra_body={"session": "s-1"}
        )
        turns = [
            await api.chat.completions.create(
                model="signalroute/agent", messages=next_turn(first, answer, f"Change {i}.")
            )
            for i in range(3)
        ]
        by_session = await api.chat.completions.create(
            model="signalroute/agent",
            messages=[{"role": "user", "content": "Another thing."}],
            extra_body={"session": "s-1"},
        )
    async with service(pool_config=pool, provider_app=fake.app(), **UNIFORM) as client:
        restarted = await openai_client(client).chat.completions.create(
            model="signalroute/agent", messages=next_turn(first, answer, "After a restart.")
        )
    for turn in (*turns, by_session, restarted):
        assert turn.model == answer.model
        decision = pre(turn)
        assert decision["probability"] == 1.0
        pinned = f"the conversation is pinned to {answer.model}, its previous turn's arm"
        assert set(decision["masked"].values()) == {pinned}
    assert len(pre(answer)["pmf"]) == 3  # a first turn is drawn as usual
