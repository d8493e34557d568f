"""The test server speaks the protocol as the ``openai`` client parses it: tool calls whole
and streamed (the client's own stream accumulator rebuilds them), text, usage."""

from __future__ import annotations

import socket
from typing import Any

from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from tests.router.fake_openai import FakeOpenAI
from tests.router.service.conftest import run_service

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_openai_client_parses_the_fake_as_it_parses_openai() -> None:
    fake = FakeOpenAI()
    port = free_port()
    async with run_service(fake.app(), port):
        api = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        ask: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
        called = await api.chat.completions.create(
            model="m",
            messages=ask,
            tools=TOOLS,
        )
        async with api.chat.completions.stream(
            model="m",
            messages=ask,
            tools=TOOLS,
            stream_options={"include_usage": True},
        ) as stream:
            streamed = await stream.get_final_completion()
        text = await api.chat.completions.create(model="m", messages=ask, max_tokens=3)
    for completion in (called, streamed):
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        calls = choice.message.tool_calls or []
        assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
        assert [
            (c.type, c.function.name, c.function.arguments)
            for c in calls
            if isinstance(c, ChatCompletionMessageFunctionToolCall)
        ] == [("function", "get_weather", fake.arguments)]
        assert calls[0].id.startswith("call_")
        assert completion.usage is not None
    assert text.choices[0].message.content == "fake answer "
    assert text.choices[0].finish_reason == "length"
    assert len(fake.bodies) == 3
