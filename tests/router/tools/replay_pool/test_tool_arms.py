"""The tool-calling replay arms, over real HTTP with the official ``openai`` client.

They need BFCL's recorded data (``<repo>/../shared/data/bfcl``, or wherever
SIGNALROUTE_REPLAY_BFCL_DATA points); these tests are skipped, saying so, when it is absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from openai import OpenAI

from features.errors import ConfigError
from features.tool_calls import ToolCall, normalise_schema
from router.app import served_arms
from router.pool import demo_pool
from router.settings import ReplaySettings
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.bfcl import BfclCase, BfclDataset, load_bfcl
from router.tools.replay_pool.matching import PromptMatcher
from router.tools.replay_pool.protocol import ChatCompletionRequest
from router.tools.replay_pool.tool_arms import (
    ToolArms,
    _capped,
    call_id,
    load_tool_arms,
    native_models,
    offered_name,
)
from tests.router.conftest import REPO_ROOT, parse_sse, replay_settings
from tests.router.threaded_server import threaded_server

ARM = "gpt-4o-2024-08-06-FC"


@pytest.fixture(scope="module")
def bfcl() -> BfclDataset:
    path = ReplaySettings().bfcl_data_path() or REPO_ROOT.parent / "shared" / "data" / "bfcl"
    if not (path / "outputs.tsv").is_file():
        pytest.skip(
            f"BFCL data not found at {path}: set SIGNALROUTE_REPLAY_BFCL_DATA to the folder "
            "holding outputs.tsv, prices.json and questions/"
        )
    return load_bfcl(path)


@pytest.fixture(scope="module")
def arms(bfcl: BfclDataset) -> ToolArms:
    return ToolArms(bfcl)


@pytest.fixture(scope="module")
def app(replay_matcher: PromptMatcher, arms: ToolArms) -> FastAPI:
    return create_replay_app(replay_settings(), matcher=replay_matcher, tool_arms=arms)


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    """The app behind uvicorn on a free loopback port, for the module."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="critical")
    with threaded_server(config, "tool-arms-uvicorn") as url:
        yield f"{url}/v1"


@pytest.fixture
def client(base_url: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=base_url, api_key="replay", max_retries=0) as openai_client:
        yield openai_client


def case(bfcl: BfclDataset, prompt_id: str) -> BfclCase:
    return next(c for c in bfcl if c.prompt_id == prompt_id)


def tools_of(case: BfclCase, *, native: bool = True) -> list[dict[str, Any]]:
    """The case's functions as a client sends them: JSON Schema parameters."""
    tools = []
    for tool in case.tools(native=native):
        function = dict(tool["function"])
        function["parameters"] = normalise_schema(function["parameters"])
        tools.append({"type": "function", "function": function})
    return tools


def recorded_calls(bfcl: BfclDataset, prompt_id: str, model: str = ARM) -> list[ToolCall]:
    calls = bfcl.answer(prompt_id, model).native_calls()
    assert calls is not None
    return list(calls)


def test_the_native_configurations_are_the_arms(arms: ToolArms) -> None:
    assert set(arms.models) >= {ARM, "gpt-4o-mini-2024-07-18-FC", "gpt-3.5-turbo-0125-FC"}
    assert all("-FC" in model for model in arms.models)
    assert len(arms.models) == 7


def test_a_tool_call_parses_with_the_openai_client(client: OpenAI, bfcl: BfclDataset) -> None:
    simple = case(bfcl, "simple_1")
    raw = client.chat.completions.with_raw_response.create(
        model=ARM,
        messages=[{"role": "user", "content": simple.question}],
        tools=tools_of(simple),  # type: ignore[arg-type]
    )
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    recorded = recorded_calls(bfcl, "simple_1")
    assert [(call.function.name, call.function.arguments)] == [
        (c.name, c.arguments) for c in recorded
    ]
    answer = bfcl.answer("simple_1", ARM)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        answer.input_tokens,
        answer.output_tokens,
    )
    cost = bfcl.cost_usd(simple, answer)
    assert completion.usage.model_extra == {"cost_usd": pytest.approx(cost)}
    assert raw.headers["x-replay-match"] == "exact"
    assert raw.headers["x-replay-prompt-id"] == "simple_1"


def test_streamed_parallel_calls_parse_with_the_openai_client(
    client: OpenAI, bfcl: BfclDataset
) -> None:
    parallel = case(bfcl, "parallel_function_0")
    with client.chat.completions.stream(
        model=ARM,
        messages=[{"role": "user", "content": parallel.question}],
        tools=tools_of(parallel),  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    recorded = recorded_calls(bfcl, "parallel_function_0")
    assert len(recorded) == 2
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        (c.name, c.arguments) for c in recorded
    ]
    assert len({c.id for c in choice.message.tool_calls}) == 2
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert [(e.index, e.name, json.loads(e.arguments)) for e in done] == [
        (i, c.name, json.loads(c.arguments)) for i, c in enumerate(recorded)
    ]
    assert final.usage is not None
    assert final.usage.completion_tokens == bfcl.answer("parallel_function_0", ARM).output_tokens


def test_the_stream_sends_tool_call_deltas_as_openai_does(base_url: str, bfcl: BfclDataset) -> None:
    parallel = case(bfcl, "parallel_function_0")
    body = {
        "model": ARM,
        "messages": [{"role": "user", "content": parallel.question}],
        "tools": tools_of(parallel),
        "stream": True,
    }
    response = httpx.post(f"{base_url}/chat/completions", json=body, timeout=10.0)
    payloads = parse_sse(response.text)
    assert payloads[-1] == "[DONE]"
    deltas = [p["choices"][0]["delta"] for p in payloads[:-1]]
    assert deltas[0] == {"role": "assistant", "content": None}
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    openings = [c for c in calls if "id" in c]
    assert [c["index"] for c in openings] == [0, 1]
    for opening in openings:
        assert opening["type"] == "function"
        assert opening["function"]["arguments"] == ""
        assert opening["function"]["name"] == "spotify_play"
    pieces = [c for c in calls if "id" not in c]
    assert all(
        set(c) == {"index", "function"} and set(c["function"]) == {"arguments"} for c in pieces
    )
    joined = [
        "".join(c["function"]["arguments"] for c in pieces if c["index"] == i) for i in (0, 1)
    ]
    assert joined == [c.arguments for c in recorded_calls(bfcl, "parallel_function_0")]
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_calls_are_named_as_the_request_offered_them(client: OpenAI, bfcl: BfclDataset) -> None:
    simple = case(bfcl, "simple_1")
    completion = client.chat.completions.create(
        model=ARM,
        messages=[{"role": "user", "content": simple.question}],
        tools=tools_of(simple, native=False),  # type: ignore[arg-type]
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "math.factorial"  # recorded: math_factorial
    assert offered_name("math_factorial", ["math.factorial"]) == "math.factorial"
    assert offered_name("math_factorial", ["math_factorial", "x"]) == "math_factorial"
    assert offered_name("python", ["math.factorial"]) == "python"


def test_a_text_answer_stays_text(client: OpenAI, bfcl: BfclDataset) -> None:
    """On relevance prompts (no offered function fits) gpt-4o answered in prose."""
    relevance = case(bfcl, "relevance_0")
    completion = client.chat.completions.create(
        model=ARM,
        messages=[{"role": "user", "content": relevance.question}],
        tools=tools_of(relevance),  # type: ignore[arg-type]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert choice.message.content == bfcl.answer("relevance_0", ARM).text()


def request(case: BfclCase, **fields: Any) -> ChatCompletionRequest:
    body = {"model": ARM, "messages": [{"role": "user", "content": case.question}]}
    return ChatCompletionRequest.model_validate({**body, **fields})


def test_a_paraphrase_maps_to_the_nearest_recorded_prompt(
    arms: ToolArms, bfcl: BfclDataset
) -> None:
    simple = case(bfcl, "parallel_function_0")
    reworded = request(simple, tools=tools_of(simple))
    reworded.messages[
        0
    ].content = "Please play songs of Taylor Swift (20 min) and Maroon 5 (15 min) on Spotify."
    match, found = arms.match(reworded)
    assert match.kind == "nearest"
    assert found.prompt_id == "parallel_function_0"
    wrapped = request(simple, tools=tools_of(simple))
    wrapped.messages[0].content = f"Your last answer was wrong.\n\n{simple.question}\n\nTry again."
    match, found = arms.match(wrapped)
    assert (match.kind, found.prompt_id) == ("contains", "parallel_function_0")


def test_a_repeated_question_maps_to_the_prompt_whose_functions_are_offered(
    arms: ToolArms, bfcl: BfclDataset
) -> None:
    by_question: dict[str, list[BfclCase]] = {}
    for c in bfcl:
        by_question.setdefault(c.question, []).append(c)
    twins = next(
        cases
        for cases in by_question.values()
        if len(cases) > 1 and len({tuple(f["name"] for f in c.functions) for c in cases}) > 1
    )
    for twin in twins:
        _, found = arms.match(request(twin, tools=tools_of(twin)))
        assert found.prompt_id == twin.prompt_id


def test_what_has_no_recording_is_answered_in_text(arms: ToolArms, bfcl: BfclDataset) -> None:
    simple = case(bfcl, "simple_1")
    recorded = bfcl.answer("simple_1", ARM).text()
    for plain in (request(simple), request(simple, tools=tools_of(simple), tool_choice="none")):
        answer = arms.answer(plain, completion_id="c", created=0).answer
        assert (answer.content, answer.tool_calls, answer.finish_reason) == (recorded, (), "stop")
    messages = [
        {"role": "user", "content": simple.question},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "math_factorial", "arguments": '{"number": 5}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "120"},
    ]
    after = arms.answer(
        request(simple, tools=tools_of(simple), messages=messages), completion_id="c", created=0
    ).answer
    assert after.tool_calls == ()
    assert after.content == 'The tools returned: ["120"]'


def test_a_token_cap_cuts_the_calls(arms: ToolArms, bfcl: BfclDataset) -> None:
    parallel = case(bfcl, "parallel_function_0")
    capped = request(parallel, tools=tools_of(parallel), max_tokens=10)
    answer = arms.answer(capped, completion_id="c", created=0).answer
    assert answer.finish_reason == "length"
    assert sum(len(c.arguments) for c in answer.tool_calls) == 40
    assert answer.usage.completion_tokens == 10
    calls = [ToolCall("f", "abcdef"), ToolCall("g", "xyz")]
    assert _capped(calls, 7) == ([ToolCall("f", "abcdef"), ToolCall("g", "x")], True)
    assert _capped(calls, 9) == (calls, False)
    assert call_id("c1", 0) == call_id("c1", 0) != call_id("c1", 1)


def test_an_unknown_model_is_refused(arms: ToolArms, bfcl: BfclDataset) -> None:
    with pytest.raises(Exception, match="not a tool-calling replay arm"):
        arms.answer(
            request(case(bfcl, "simple_1"), model="claude-v2"), completion_id="c", created=0
        )


def test_the_demo_pool_keeps_the_tool_arms_its_replay_pool_serves(
    app: FastAPI, replay_app: FastAPI, bfcl: BfclDataset
) -> None:
    assert set(native_models(bfcl)) <= set(app.state.models)
    with_tools = served_arms(demo_pool(), app.state.models)
    assert [a.name for a in with_tools.arms if "tools" in a.capabilities] == [
        "gpt-4o-2024-08-06-FC", "gpt-4o-mini-2024-07-18-FC", "gpt-3.5-turbo-0125-FC"
    ]  # fmt: skip
    without = served_arms(demo_pool(), replay_app.state.models)
    assert len(without.arms) == 11
    assert not any("tools" in a.capabilities for a in without.arms)


def test_the_tool_arms_are_listed_beside_the_recorded_models(client: OpenAI) -> None:
    listed = [model.id for model in client.models.list()]
    judge = listed.index("replay/judge")
    assert "gpt-4-1106-preview" in listed[:judge]
    assert listed[judge + 1 :] == [m for m in listed[judge + 1 :] if "-FC" in m]
    assert ARM in listed[judge + 1 :]


def test_a_configured_bfcl_folder_must_hold_the_data(tmp_path: Path) -> None:
    settings = ReplaySettings(bfcl_data=tmp_path / "nowhere")
    assert settings.bfcl_data_path() == tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="SIGNALROUTE_REPLAY_BFCL_DATA"):
        load_tool_arms(settings)
