"""The official ``openai`` client against the running service: profiles and arms, streaming
and not, routing details in headers and in the ``signalroute`` field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from router.tools.replay_pool.dataset import ReplayDataset
from tests.router.service.conftest import ServiceClient, ServiceFactory

GPT4 = "gpt-4-1106-preview"
MISTRAL = "mistralai/mistral-7b-chat"

POOL = """
arms:
  - {name: gpt-4-1106-preview, base_url: "{self}/replay/v1", model: gpt-4-1106-preview,
     input_usd_per_mtok: 10.0, output_usd_per_mtok: 30.0, context_window: 128000}
  - {name: mistralai/mistral-7b-chat, base_url: "{self}/replay/v1",
     model: mistralai/mistral-7b-chat, context_window: 32768}
stages: {in_generation: false, escalation: false, components: false, judge: never}
profiles:
  live: {stream: live, arms: [mistralai/mistral-7b-chat]}
"""


def openai_client(service: ServiceClient, api_key: str = "unused") -> AsyncOpenAI:
    base_url = str(service.base_url).rstrip("/") + "/v1"
    return AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def collect(stream: AsyncIterator[Any]) -> tuple[str, list[Any]]:
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


@pytest.fixture
def prompt(replay_dataset: ReplayDataset) -> str:
    return next(r for r in replay_dataset if r.task == "mbpp" and r.split == "test").prompt


async def test_models_lists_profiles_then_arms(service: ServiceFactory) -> None:
    async with service() as client:
        models = [m async for m in openai_client(client).models.list()]
    ids = [m.id for m in models]
    assert ids[0] == "signalroute/auto"
    assert "signalroute/cheap" in ids
    assert GPT4 in ids
    cheap = next(m for m in models if m.id == "signalroute/cheap")
    assert (cheap.model_extra or {})["signalroute"]["kind"] == "profile"


async def test_a_profile_routes_and_says_how(service: ServiceFactory, prompt: str) -> None:
    async with service() as client:
        api = openai_client(client)
        raw = await api.chat.completions.with_raw_response.create(
            model="signalroute/auto", messages=user(prompt)
        )
        completion = raw.parse()
        details = (completion.model_extra or {})["signalroute"]
        stored = (await client.get(f"/requests/{details['request_id']}")).json()

        cheap = await api.chat.completions.create(model="signalroute/cheap", messages=user(prompt))
        cheap_details = (cheap.model_extra or {})["signalroute"]
        with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-5'"):
            await api.chat.completions.create(model="gpt-5", messages=user(prompt))

    text = completion.choices[0].message.content
    assert text == stored["output"]
    assert completion.model == stored["model"] == details["arm"]
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    assert raw.headers["x-signalroute-request-id"] == details["request_id"]
    assert raw.headers["x-signalroute-arm"] == completion.model
    assert raw.headers["x-signalroute-profile"] == "signalroute/auto"
    assert float(raw.headers["x-signalroute-probability"]) == pytest.approx(
        details["probability"], abs=1e-6
    )
    assert float(raw.headers["x-signalroute-cost-usd"]) == pytest.approx(details["cost_usd"])
    assert raw.headers["x-request-id"]
    pre = details["trace"]["decisions"][0]
    assert pre["stage"] == "pre"
    assert 0 < pre["probability"] <= 1
    cheap_pre = cheap_details["trace"]["decisions"][0]
    allowed = {
        "gpt-3.5-turbo-1106",
        "claude-instant-v1",
        "mistralai/mixtral-8x7b-chat",
        "mistralai/mistral-7b-chat",
        "meta/code-llama-instruct-34b-chat",
    }
    assert set(cheap_pre["pmf"]) <= allowed
    assert cheap_pre["masked"][GPT4] == "not among the request's allowed arms"


async def test_streams_through_a_profile_and_to_an_arm(
    service: ServiceFactory, replay_dataset: ReplayDataset, prompt: str
) -> None:
    recorded = next(r for r in replay_dataset if r.prompt == prompt).outcome(GPT4)
    async with service() as client:
        api = openai_client(client)
        routed = await api.chat.completions.create(
            model="signalroute/auto",
            messages=user(prompt),
            stream=True,
            stream_options={"include_usage": True},
        )
        text, chunks = await collect(routed)
        details = next(c.model_extra["signalroute"] for c in chunks if c.model_extra)
        stored = (await client.get(f"/requests/{details['request_id']}")).json()

        direct = await api.chat.completions.create(model=GPT4, messages=user(prompt), stream=True)
        direct_text, direct_chunks = await collect(direct)
        direct_details = next(c.model_extra["signalroute"] for c in direct_chunks if c.model_extra)

    assert text == stored["output"]
    assert len(chunks) > 3
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert details["trace"]["decisions"]
    assert direct_text == recorded.response
    assert direct_details == {
        "request_id": direct_details["request_id"],
        "arm": GPT4,
        "routing": "bypassed",
        "cost_usd": pytest.approx(recorded.cost_usd),
        "usage_estimated": False,
    }
    assert all(c.choices for c in direct_chunks)  # no usage chunk unless asked for


async def test_a_live_profile_forwards_text_as_it_is_generated(
    service: ServiceFactory, replay_dataset: ReplayDataset, prompt: str, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    recorded = next(r for r in replay_dataset if r.prompt == prompt).outcome(MISTRAL)
    # paced as a model generates: an unpaced stream may arrive in one read, and one delta
    async with service(pool_config=pool, replay={"stream_chunks_per_s": 200.0}) as client:
        api = openai_client(client)
        stream = await api.chat.completions.create(
            model="signalroute/live", messages=user(prompt), stream=True
        )
        text, chunks = await collect(stream)
    details = chunks[-1].model_extra["signalroute"]
    assert text == recorded.response
    assert details["arm"] == MISTRAL
    assert details["profile"] == "signalroute/live"
    assert len(chunks) > 3


async def test_hints_go_through_the_openai_client(service: ServiceFactory, prompt: str) -> None:
    async with service() as client:
        api = openai_client(client)
        completion = await api.chat.completions.create(
            model="signalroute/auto", messages=user(prompt), extra_body={"hints": {"task": "mbpp"}}
        )
        with pytest.raises(openai.BadRequestError, match="hint key 'Task' must be"):
            await api.chat.completions.create(
                model="signalroute/auto", messages=user(prompt), extra_body={"hints": {"Task": "x"}}
            )
        bypassed = await api.chat.completions.create(
            model=GPT4, messages=user(prompt), extra_body={"hints": {"task": "mbpp"}}
        )
        bypassed_id = (bypassed.model_extra or {})["signalroute"]["request_id"]
        stored = (await client.get(f"/requests/{bypassed_id}")).json()
    details = (completion.model_extra or {})["signalroute"]
    assert details["trace"]["decisions"][0]["signals"]["query"]["hint_task"] == "mbpp"
    assert stored["params"]["hints"] == {"task": "mbpp"}  # a named arm: logged, not learned


async def test_the_completion_id_finds_the_logged_request_and_its_trace(
    service: ServiceFactory, prompt: str, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    async with service() as client:
        api = openai_client(client)
        completion = await api.chat.completions.create(
            model="signalroute/cheap", messages=user(prompt)
        )
        stored = (await client.get(f"/requests/{completion.id}")).json()
    async with service(pool_config=pool) as client:
        stream = await openai_client(client).chat.completions.create(
            model="signalroute/live", messages=user(prompt), stream=True
        )
        _, chunks = await collect(stream)
        live = await client.get(f"/requests/{chunks[0].id}")
    trace = (completion.model_extra or {})["signalroute"]["trace"]["decisions"]
    assert completion.id.startswith("chatcmpl-")
    assert stored["id"] == completion.id.removeprefix("chatcmpl-")
    assert [d["decision_id"] for d in stored["decisions"]] == [d["decision_id"] for d in trace]
    for logged, shown in zip(stored["decisions"], trace, strict=True):
        assert logged["outcome"] == shown["outcome"]
        assert logged["masked"] == shown["masked"]
        assert logged["details"] == shown["details"]
    assert trace[0]["masked"]  # the cheap profile masks the other arms, with reasons
    assert live.status_code == 200
    assert live.json()["decisions"][0]["outcome"] == "ok"
