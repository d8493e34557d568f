"""Tool calls end to end through the official ``openai`` client, routed and to a named arm,
streamed and not, against arms that speak the protocol (``tests.router.fake_openai``):
calls arrive as OpenAI sends them, multi-turn conversations with tool results work, and
calls are checked (arguments JSON, the function's schema, a function offered): a failed
call is a failed answer, rewarded 0 and escalated with the error as context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from features.tool_calls import normalise_schema
from router.settings import ReplaySettings
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.bfcl import load_bfcl
from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.replay_pool.matching import PromptMatcher
from router.tools.replay_pool.tool_arms import ToolArms
from tests.router.conftest import REPO_ROOT, replay_settings
from tests.router.fake_openai import FakeOpenAI
from tests.router.service.conftest import ServiceFactory
from tests.router.service.test_openai_client import openai_client, user

POOL = """
arms:
  - {name: caller-a, base_url: "{self}/replay/v1", model: caller-a, capabilities: [tools]}
  - {name: caller-b, base_url: "{self}/replay/v1", model: caller-b, capabilities: [tools]}
  - {name: prose, base_url: "{self}/replay/v1", model: prose}
escalation_targets: [caller-b]
stages: {components: false, judge: never, escalation: ESCALATION}
profiles:
  live: {stream: live}
"""
WEATHER: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]
FORCED: Any = {"type": "function", "function": {"name": "get_weather"}}


def pool_file(tmp_path: Path, escalation: bool = False) -> Path:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL.replace("ESCALATION", "true" if escalation else "false"))
    return pool


def calls_of(completion: ChatCompletion) -> list[tuple[str, str]]:
    calls = completion.choices[0].message.tool_calls or []
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    return [
        (c.function.name, c.function.arguments)
        for c in calls
        if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ]


async def streamed(api: AsyncOpenAI, **request: Any) -> tuple[ChatCompletion, list[Any]]:
    """The client's own accumulation of a stream, and the raw tool-call deltas."""
    deltas: list[Any] = []
    async with api.chat.completions.stream(**request) as stream:
        async for event in stream:
            if event.type == "chunk" and event.chunk.choices:
                deltas += event.chunk.choices[0].delta.tool_calls or []
        final = await stream.get_final_completion()
    return final, deltas


async def test_tool_calls_routed_and_named_streamed_and_not(
    service: ServiceFactory, tmp_path: Path
) -> None:
    fake = FakeOpenAI()
    ask = user("What is the weather in Paris?")
    async with service(pool_config=pool_file(tmp_path), provider_app=fake.app()) as client:
        api = openai_client(client)
        routed = await api.chat.completions.create(
            model="signalroute/auto", messages=ask, tools=WEATHER, tool_choice=FORCED
        )
        named = await api.chat.completions.create(model="caller-a", messages=ask, tools=WEATHER)
        routed_stream, routed_deltas = await streamed(
            api, model="signalroute/auto", messages=ask, tools=WEATHER, tool_choice="required"
        )
        named_stream, named_deltas = await streamed(
            api, model="caller-b", messages=ask, tools=WEATHER
        )
        live_stream, live_deltas = await streamed(
            api, model="signalroute/live", messages=ask, tools=WEATHER
        )
        unnamed = await client.post(
            "/v1/chat/completions",
            json={"model": "caller-a", "messages": ask, "tools": [{"type": "function"}]},
        )
        stored = (await client.get(f"/requests/{routed.id}")).json()
    expected = [("get_weather", fake.arguments)]
    assert unnamed.status_code == 400
    assert "tools: Value error, tool 0 must be" in unnamed.json()["error"]["message"]
    for completion in (routed, named, routed_stream, named_stream, live_stream):
        assert completion.choices[0].finish_reason == "tool_calls"
        assert calls_of(completion) == expected
        # prose lacks tools: masked (a live stream names its arm only on its last chunk)
        assert completion.model in ("caller-a", "caller-b", "signalroute/live")
    for deltas in (routed_deltas, named_deltas, live_deltas):
        first, *rest = deltas
        assert (first.index, first.type, first.function.name) == (0, "function", "get_weather")
        assert first.id.startswith("call_")
        assert all(d.index == 0 and d.id is None and d.function.name is None for d in rest)
        assert "".join(d.function.arguments or "" for d in deltas) == fake.arguments
    assert len(named_deltas) > 3  # the arm's own pieces, forwarded as they came
    details = (routed.model_extra or {})["signalroute"]
    pre = details["trace"]["decisions"][0]
    assert pre["masked"]["prose"] == "lacks capability tools (the request offers tools)"
    assert pre["details"]["tool_calls"][0]["function"]["name"] == "get_weather"
    checks = {v["name"]: v["passed"] for v in details["trace"]["assessment"]["validators"]}
    assert checks == {
        "tool_name": True,
        "tool_json": True,
        "tool_schema": True,
        "tool_choice": True,
    }
    assert stored["output"] == f"tool call: get_weather({fake.arguments})"
    assert all(body["tools"] == WEATHER for body in fake.bodies)


async def test_a_conversation_with_tool_results_goes_on(
    service: ServiceFactory, tmp_path: Path
) -> None:
    fake = FakeOpenAI()
    async with service(pool_config=pool_file(tmp_path), provider_app=fake.app()) as client:
        api = openai_client(client)
        ask: list[Any] = user("What is the weather in Paris?")
        first = await api.chat.completions.create(
            model="signalroute/auto", messages=ask, tools=WEATHER
        )
        call = (first.choices[0].message.tool_calls or [])[0]
        turn: list[Any] = [
            *ask,
            first.choices[0].message.model_dump(exclude_none=True, exclude={"annotations"}),
            {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 18}'},
        ]
        second = await api.chat.completions.create(
            model="signalroute/auto", messages=turn, tools=WEATHER
        )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == 'the tool said: {"celsius": 18}'
    sent = fake.bodies[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 18}'}


async def test_a_failed_call_is_rewarded_0_and_escalated_with_the_error(
    service: ServiceFactory, tmp_path: Path
) -> None:
    fake = FakeOpenAI(by_model={"caller-a": ("delete_everything", "{}")})
    pool = pool_file(tmp_path, escalation=True)
    uniform = {"exploration": "epsilon", "epsilon": 1.0}  # every draw uniform, seeded
    async with service(pool_config=pool, provider_app=fake.app(), **uniform) as client:
        api = openai_client(client)
        answers = [
            await api.chat.completions.create(
                model="signalroute/auto",
                messages=user(f"Weather in city number {i}?"),
                tools=WEATHER,
            )
            for i in range(12)
        ]
    failed = [
        a
        for a in answers
        if (a.model_extra or {})["signalroute"]["trace"]["decisions"][0]["arm"] == "caller-a"
    ]
    assert failed, "caller-a was never drawn first in 12 requests"
    escalated = 0
    for answer in failed:
        pre, post = (answer.model_extra or {})["signalroute"]["trace"]["decisions"][:2]
        assert pre["outcome"] == "ok, failed validation"
        assert pre["reward"] == 0.0
        assert pre["details"]["validators"] == ["tool_name"]
        assert post["stage"] == "post"
        if post["arm"] == "escalate:caller-b":
            assert post["outcome"] == "escalated; answer replaced"
            reason = "tool_name: call 1 (delete_everything): not offered (offered: get_weather)"
            assert post["details"]["reasons"] == [reason]
            assert reason in post["details"]["escalation_prompt"]
            assert "tool call: delete_everything({})" in post["details"]["escalation_prompt"]
            assert answer.model == "caller-b"
            assert calls_of(answer) == [("get_weather", fake.arguments)]
            escalated += 1
    assert escalated, "no failed call was escalated (the seeded draws changed?)"


async def test_arguments_that_cannot_become_json_cut_the_stream(
    service: ServiceFactory, tmp_path: Path
) -> None:
    fake = FakeOpenAI(by_model={"caller-a": ("get_weather", "city=Paris")})
    uniform = {"exploration": "epsilon", "epsilon": 1.0}  # every draw uniform, seeded
    pool = pool_file(tmp_path)
    async with service(pool_config=pool, provider_app=fake.app(), **uniform) as client:
        api = openai_client(client)
        answers = [
            await api.chat.completions.create(
                model="signalroute/auto", messages=user(f"Weather {i}?"), tools=WEATHER
            )
            for i in range(12)
        ]
    cut = [
        a
        for a in answers
        if (a.model_extra or {})["signalroute"]["trace"]["decisions"][0]["arm"] == "caller-a"
    ]
    assert cut, "caller-a was never drawn first in 12 requests"
    for answer in cut:
        first, second = (answer.model_extra or {})["signalroute"]["trace"]["decisions"][:2]
        assert first["outcome"].startswith("cut: tool_arguments: call 1 arguments cannot become")
        assert first["reward"] == 0.0
        assert second["arm"] == "caller-b"
        assert calls_of(answer) == [("get_weather", fake.arguments)]
        assert json.loads(calls_of(answer)[0][1])["city"] == "Paris"


async def test_the_demo_pools_tool_arms_answer_a_forced_call(
    service: ServiceFactory, replay_dataset: ReplayDataset, replay_matcher: PromptMatcher
) -> None:
    path = ReplaySettings().bfcl_data_path() or REPO_ROOT.parent / "shared" / "data" / "bfcl"
    if not (path / "outputs.tsv").is_file():
        pytest.skip(f"BFCL data not found at {path}: set SIGNALROUTE_REPLAY_BFCL_DATA")
    bfcl = load_bfcl(path)
    demo = create_replay_app(
        replay_settings(), replay_dataset, matcher=replay_matcher, tool_arms=ToolArms(bfcl)
    )
    simple = next(c for c in bfcl if c.prompt_id == "simple_1")
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                **t["function"],
                "parameters": normalise_schema(t["function"]["parameters"]),
            },
        }
        for t in simple.tools(native=True)
    ]
    name = tools[0]["function"]["name"]
    forced: Any = {"type": "function", "function": {"name": name}}
    ask = user(simple.question)
    async with service(provider_app=demo) as client:
        api = openai_client(client)
        whole = await api.chat.completions.create(
            model="signalroute/auto", messages=ask, tools=tools, tool_choice=forced
        )
        streamed_whole, _ = await streamed(
            api, model="signalroute/auto", messages=ask, tools=tools, tool_choice=forced
        )
    for completion in (whole, streamed_whole):
        assert completion.choices[0].finish_reason == "tool_calls"
        assert [n for n, _ in calls_of(completion)] == [name]
        assert completion.model.endswith("-FC")
    checks = (whole.model_extra or {})["signalroute"]["trace"]["assessment"]["validators"]
    assert {v["name"] for v in checks} >= {"tool_name", "tool_json", "tool_schema", "tool_choice"}


TARGETS_CALL_NO_TOOLS = """
arms:
  - {name: caller-a, base_url: "{self}/replay/v1", model: caller-a, capabilities: [tools],
     input_usd_per_mtok: 0.1, output_usd_per_mtok: 0.2}
  - {name: caller-b, base_url: "{self}/replay/v1", model: caller-b, capabilities: [tools],
     input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
  - {name: prose, base_url: "{self}/replay/v1", model: prose,
     input_usd_per_mtok: 10.0, output_usd_per_mtok: 30.0}
escalation_targets: [prose]
stages: {components: false, judge: never, escalation: true}
"""


async def test_a_failed_call_escalates_to_an_arm_that_calls_tools_when_no_target_can(
    service: ServiceFactory, tmp_path: Path
) -> None:
    """The pool's only configured target cannot call tools: a failed call is escalated to
    the dearer arm that can, instead of being delivered as it is."""
    fake = FakeOpenAI(by_model={"caller-a": ("delete_everything", "{}")})
    pool = tmp_path / "pool.yaml"
    pool.write_text(TARGETS_CALL_NO_TOOLS)
    uniform = {"exploration": "epsilon", "epsilon": 1.0}  # every draw uniform, seeded
    async with service(pool_config=pool, provider_app=fake.app(), **uniform) as client:
        api = openai_client(client)
        answers = [
            await api.chat.completions.create(
                model="signalroute/auto", messages=user(f"Weather in town {i}?"), tools=WEATHER
            )
            for i in range(12)
        ]
    failed = [
        a
        for a in answers
        if (a.model_extra or {})["signalroute"]["trace"]["decisions"][0]["arm"] == "caller-a"
    ]
    assert failed, "caller-a was never drawn first in 12 requests"
    escalations = [
        decision["arm"]
        for answer in failed
        for decision in (answer.model_extra or {})["signalroute"]["trace"]["decisions"][1:]
        if decision["stage"] == "post"
    ]
    assert len(escalations) == len(failed)  # a post-generation decision for each
    assert set(escalations) <= {"accept", "escalate:caller-b"}
    assert "escalate:caller-b" in escalations  # the rule: a failed answer is escalated
    for answer in failed:
        extension = (answer.model_extra or {})["signalroute"]
        if answer.model == "caller-b":
            assert calls_of(answer) == [("get_weather", fake.arguments)]
            assert extension["format_error"] is None
        else:  # accepted by exploration: delivered, and the client is told why it is wrong
            assert extension["format_error"] == (
                "tool_name: call 1 (delete_everything): not offered (offered: get_weather)"
            )


async def test_a_call_every_arm_gets_wrong_is_delivered_with_its_error(
    service: ServiceFactory, tmp_path: Path
) -> None:
    fake = FakeOpenAI(
        by_model={"caller-a": ("delete_everything", "{}"), "caller-b": ("delete_everything", "{}")}
    )
    async with service(pool_config=pool_file(tmp_path), provider_app=fake.app()) as client:
        answer = await openai_client(client).chat.completions.create(
            model="signalroute/auto", messages=user("Weather in Oslo?"), tools=WEATHER
        )
    assert answer.choices[0].finish_reason == "tool_calls"  # the provider's own reason
    assert calls_of(answer) == [("delete_everything", "{}")]
    assert (answer.model_extra or {})["signalroute"]["format_error"] == (
        "tool_name: call 1 (delete_everything): not offered (offered: get_weather)"
    )
