"""JSON mode through the official ``openai`` client: ``response_format`` goes to arms with
the ``json`` capability (the others get it in the prompt), and a valid JSON request is
answered 2xx: when every run misses the format, with the best answer, marked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion

from router.tools.replay_pool.dataset import ReplayDataset
from tests.router.service.conftest import ServiceFactory
from tests.router.service.test_openai_client import openai_client, user

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}
FORMATS: list[dict[str, Any]] = [
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}},
]

PROSE_ONLY_POOL = """
arms:
  - {name: claude-v1, base_url: "{self}/replay/v1", model: claude-v1, context_window: 100000}
  - {name: claude-instant-v1, base_url: "{self}/replay/v1", model: claude-instant-v1,
     context_window: 100000}
  - {name: mistralai/mistral-7b-chat, base_url: "{self}/replay/v1",
     model: mistralai/mistral-7b-chat, context_window: 32768}
stages: {escalation: false, components: false, judge: never, max_switches: 2}
"""


async def test_json_requests_over_routerbench_prompts_are_answered_2xx(
    service: ServiceFactory, replay_dataset: ReplayDataset
) -> None:
    prompts = [r.prompt for r in replay_dataset if r.split == "test"][:12:2]
    async with service() as client:
        api = openai_client(client)
        answers = [
            await api.chat.completions.create(
                model="signalroute/auto", messages=user(prompt), response_format=fmt
            )  # type: ignore[call-overload]
            for prompt in prompts
            for fmt in FORMATS
        ]
    valid = 0
    for index, completion in enumerate(answers):
        choice = completion.choices[0]
        details = (completion.model_extra or {})["signalroute"]
        if details["format_error"] is None:
            value = json.loads(choice.message.content or "")
            if index % 2:
                jsonschema.validate(value, SCHEMA)
            assert choice.finish_reason in ("stop", "length")
            valid += 1
        else:
            assert str(choice.finish_reason) in ("format_failed", "length")
    assert valid >= len(answers) // 3  # the JSON-capable arms answer, escalation rescues


async def test_when_every_run_misses_the_format_the_last_one_is_answered_and_marked(
    service: ServiceFactory, replay_dataset: ReplayDataset, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(PROSE_ONLY_POOL)
    record = next(r for r in replay_dataset if r.task == "mbpp" and r.split == "test")
    async with service(pool_config=pool) as client:
        api = openai_client(client)
        raw = await api.chat.completions.with_raw_response.create(
            model="signalroute/auto",
            messages=user(record.prompt),
            response_format={"type": "json_object"},
        )
        completion = raw.parse()
        details = (completion.model_extra or {})["signalroute"]
        stored = (await client.get(f"/requests/{details['request_id']}")).json()
    assert raw.status_code == 200
    choice = completion.choices[0]
    assert str(choice.finish_reason) == "format_failed"  # not in the client's Literal: a str
    assert details["format_error"] == "the output is not JSON"
    assert choice.message.content == record.outcome(completion.model).response
    decisions = details["trace"]["decisions"]
    assert [d["outcome"][:11] for d in decisions] == ["cut: format", "cut: format", "ok, failed "]
    assert decisions[-1]["details"]["last_run"] is True
    assert stored["status"] == "completed"


async def test_a_request_every_run_stalls_on_is_not_retried_by_the_client(
    service: ServiceFactory, replay_dataset: ReplayDataset, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(PROSE_ONLY_POOL.replace("max_switches: 2", "max_switches: 2, stall_ms: 0.01"))
    record = next(r for r in replay_dataset if r.task == "mbpp" and r.split == "test")
    sent: list[object] = []

    async def count(request: object) -> None:
        sent.append(request)

    async with service(pool_config=pool) as client:
        api = AsyncOpenAI(
            base_url=str(client.base_url).rstrip("/") + "/v1",
            api_key="unused",
            max_retries=2,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [count]}),
        )
        with pytest.raises(openai.APIStatusError) as raised:
            await api.chat.completions.create(
                model="signalroute/auto", messages=user(record.prompt)
            )
    assert raised.value.status_code == 502
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert "every run was cut" in raised.value.message
    assert len(sent) == 1


async def test_the_sync_client_gets_json_and_two_choices(
    service: ServiceFactory, replay_dataset: ReplayDataset
) -> None:
    record = next(r for r in replay_dataset if r.task == "arc-challenge" and r.split == "test")

    def ask(base_url: str) -> ChatCompletion:
        api = OpenAI(base_url=base_url, api_key="unused", max_retries=0)
        return api.chat.completions.create(
            model="gpt-4-1106-preview",
            messages=user(record.prompt),
            response_format={"type": "json_object"},
            n=2,
        )

    async with service() as client:
        completion = await asyncio.to_thread(ask, str(client.base_url).rstrip("/") + "/v1")
    recorded = record.outcome("gpt-4-1106-preview").response
    assert [json.loads(c.message.content or "") for c in completion.choices] == [
        {"answer": recorded},
        {"answer": recorded},
    ]
