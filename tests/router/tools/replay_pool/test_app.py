"""The replay pool over ASGI: answers, streams, errors and every fault."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import numpy as np
import pytest

from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.replay_pool.faults import FaultPlan
from router.tools.replay_pool.judge import JUDGE_MODEL
from router.tools.replay_pool.matching import PromptMatcher
from tests.router.conftest import (
    BASE_URL,
    STALL_MS,
    parse_sse,
    record_with_long_answer,
    replay_settings,
    streamed_content,
)

MODEL = "gpt-4-1106-preview"
COMPLETIONS = "/v1/chat/completions"


def chat(prompt: str, model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


def streaming(prompt: str, model: str = MODEL) -> dict[str, Any]:
    return chat(prompt, model, stream=True, stream_options={"include_usage": True})


async def test_healthz(replay_client: httpx.AsyncClient) -> None:
    response = await replay_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "prompts": 3164, "models": 12}


async def test_models_are_listed_in_openai_format(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    body = (await replay_client.get("/v1/models")).json()
    assert body["object"] == "list"
    ids = [entry["id"] for entry in body["data"]]
    assert ids == [*replay_dataset.models, JUDGE_MODEL]
    assert all(
        entry == {"id": e, "object": "model", "owned_by": "replay"}
        for entry, e in zip(body["data"], ids, strict=True)
    )


async def test_answer_is_the_recorded_response(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = replay_dataset.get("mbpp.dev.1")
    for model in ("claude-v2", MODEL):
        outcome = record.outcome(model)
        response = await replay_client.post(
            COMPLETIONS,
            json=chat(record.prompt, model, temperature=0.7, response_format={"type": "text"}),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["object"] == "chat.completion"
        assert body["model"] == model
        assert body["choices"][0]["message"] == {"role": "assistant", "content": outcome.response}
        assert body["choices"][0]["finish_reason"] == "stop"
        prompt_tokens = math.ceil(len(record.prompt) / 4)
        completion_tokens = math.ceil(len(outcome.response) / 4)
        assert body["usage"] == {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost_usd": outcome.cost_usd,
        }
        assert response.headers["x-replay-match"] == "exact"
        assert response.headers["x-replay-prompt-id"] == record.prompt_id
        assert float(response.headers["x-replay-similarity"]) == 1.0
        assert float(response.headers["x-replay-cost-usd"]) == outcome.cost_usd
        assert response.headers["x-replay-fault"] == "none"


async def test_escalation_prompt_replays_the_wrapped_record(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = replay_dataset.get("arc-challenge.test.1")
    wrapped = f"The previous answer was wrong (it said 'D').\n\n{record.prompt}\n\nAnswer again."
    messages = [
        {"role": "system", "content": "You are careful."},
        {"role": "user", "content": [{"type": "text", "text": wrapped}]},
    ]
    response = await replay_client.post(COMPLETIONS, json={"model": MODEL, "messages": messages})
    assert response.headers["x-replay-match"] == "contains"
    assert response.headers["x-replay-prompt-id"] == record.prompt_id
    content = response.json()["choices"][0]["message"]["content"]
    assert content == record.outcome(MODEL).response


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 200)
    response = await replay_client.post(COMPLETIONS, json=chat(record.prompt, max_tokens=10))
    body = response.json()
    assert body["choices"][0]["message"]["content"] == record.outcome(MODEL).response[:40]
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 10


async def test_stream_reassembles_the_recorded_response(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 200)
    outcome = record.outcome(MODEL)
    response = await replay_client.post(COMPLETIONS, json=streaming(record.prompt))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-replay-prompt-id"] == record.prompt_id
    payloads = parse_sse(response.text)
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(p["object"] == "chat.completion.chunk" for p in payloads[:-1])
    assert streamed_content(payloads) == outcome.response
    deltas = [p["choices"][0]["delta"]["content"] for p in payloads[1:-3]]
    assert max(len(d) for d in deltas) == 16
    assert payloads[-3]["choices"][0]["finish_reason"] == "stop"
    assert payloads[-2]["choices"] == []
    assert payloads[-2]["usage"]["cost_usd"] == outcome.cost_usd
    assert payloads[-2]["usage"]["completion_tokens"] == math.ceil(len(outcome.response) / 4)
    assert payloads[-1] == "[DONE]"


async def test_stream_without_include_usage_has_no_usage_chunk(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = replay_dataset.get("mbpp.dev.1")
    response = await replay_client.post(COMPLETIONS, json=chat(record.prompt, stream=True))
    payloads = parse_sse(response.text)
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in p for p in payloads if isinstance(p, dict))


# --- errors ------------------------------------------------------------------------------------


async def test_unknown_model_is_404_in_openai_format(replay_client: httpx.AsyncClient) -> None:
    response = await replay_client.post(COMPLETIONS, json=chat("hi", model="gpt-5"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "model_not_found"
    assert "gpt-5" in error["message"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (b"{not json", "Invalid JSON"),
        (b'{"model": "claude-v2"}', "messages"),
        (b'{"model": "claude-v2", "messages": [{"role": "system", "content": "x"}]}', "user"),
        (b'{"model": "claude-v2", "messages": [], "stream": true}', "messages"),
        (b'{"model": "claude-v2", "messages": [{"role": "user"}], "max_tokens": 0}', "max_tokens"),
    ],
)
async def test_malformed_body_is_400_in_openai_format(
    replay_client: httpx.AsyncClient, body: bytes, mentions: str
) -> None:
    response = await replay_client.post(
        COMPLETIONS, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert mentions in error["message"]


async def test_unknown_fault_header_is_400(replay_client: httpx.AsyncClient) -> None:
    response = await replay_client.post(
        COMPLETIONS, json=chat("hi"), headers={"x-replay-fault": "meteor"}
    )
    assert response.status_code == 400
    assert "x-replay-fault" in response.json()["error"]["message"]


# --- forced faults -----------------------------------------------------------------------------


def forced(kind: str) -> dict[str, str]:
    return {"x-replay-fault": kind}


async def test_forced_error_is_a_500_json_error(replay_client: httpx.AsyncClient) -> None:
    response = await replay_client.post(COMPLETIONS, json=chat("hi"), headers=forced("error"))
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert response.headers["x-replay-fault"] == "error"


async def test_forced_rate_limit_is_a_429_with_retry_after(
    replay_client: httpx.AsyncClient,
) -> None:
    response = await replay_client.post(
        COMPLETIONS, json=streaming("hi"), headers=forced("rate_limit")
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["retry-after-ms"] == "1000"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("stream", [False, True])
async def test_forced_stall_delays_a_complete_answer(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset, stream: bool
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 200)
    body = streaming(record.prompt) if stream else chat(record.prompt)
    started = time.perf_counter()
    response = await replay_client.post(COMPLETIONS, json=body, headers=forced("stall"))
    assert time.perf_counter() - started >= STALL_MS / 1000
    assert response.headers["x-replay-fault"] == "stall"
    if stream:
        payloads = parse_sse(response.text)
        assert streamed_content(payloads) == record.outcome(MODEL).response
        assert payloads[-1] == "[DONE]"
    else:
        content = response.json()["choices"][0]["message"]["content"]
        assert content == record.outcome(MODEL).response


async def test_forced_cut_ends_the_stream_without_finish_or_done(
    cut_tolerant_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 200)
    response = await cut_tolerant_client.post(
        COMPLETIONS, json=streaming(record.prompt), headers=forced("cut")
    )
    assert response.status_code == 200
    assert response.headers["x-replay-fault"] == "cut"
    payloads = parse_sse(response.text)
    assert "[DONE]" not in payloads
    assert all(p["choices"][0]["finish_reason"] is None for p in payloads)
    content = streamed_content(payloads)
    recorded = record.outcome(MODEL).response
    assert recorded.startswith(content)
    assert len(content) < len(recorded)


async def test_forced_cut_truncates_a_non_streamed_body(
    cut_tolerant_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 200)
    response = await cut_tolerant_client.post(
        COMPLETIONS, json=chat(record.prompt), headers=forced("cut")
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


async def test_forced_none_overrides_drawn_faults(replay_matcher: PromptMatcher) -> None:
    app = create_replay_app(replay_settings(error_rate=1.0), matcher=replay_matcher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client:
        failing = await client.post(COMPLETIONS, json=chat("hi"))
        healthy = await client.post(COMPLETIONS, json=chat("hi"), headers=forced("none"))
    assert failing.status_code == 500
    assert healthy.status_code == 200


async def test_latency_is_waited_before_the_answer(replay_matcher: PromptMatcher) -> None:
    app = create_replay_app(replay_settings(latency_ms=150.0), matcher=replay_matcher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client:
        started = time.perf_counter()
        response = await client.post(COMPLETIONS, json=chat("hi"))
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.15


# --- seeded faults -----------------------------------------------------------------------------

RATES = {
    "error_rate": 0.2,
    "rate_limit_rate": 0.1,
    "stall_rate": 0.1,
    "cut_rate": 0.1,
    "stall_ms": 1.0,
}


async def fault_sequence(matcher: PromptMatcher, seed: int, requests: int) -> list[str]:
    settings = replay_settings(seed=seed, **RATES)
    app = create_replay_app(settings, matcher=matcher)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    kinds = []
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        for index in range(requests):
            body = chat("Write a python function to identify non-prime numbers.")
            if index % 2:
                body = streaming("Write a python function to identify non-prime numbers.")
            response = await client.post(COMPLETIONS, json=body)
            kinds.append(response.headers["x-replay-fault"])
    return kinds


async def test_seeded_faults_are_reproducible(replay_matcher: PromptMatcher) -> None:
    first = await fault_sequence(replay_matcher, 42, 40)
    assert first == await fault_sequence(replay_matcher, 42, 40)
    assert first != await fault_sequence(replay_matcher, 43, 40)
    plan = FaultPlan(replay_settings(seed=42, **RATES), np.random.default_rng(42))
    assert first == [plan.draw().kind for _ in range(40)]
    assert {"none", "error", "rate_limit"} <= set(first)


async def test_injected_rng_drives_the_faults(
    replay_dataset: ReplayDataset, replay_matcher: PromptMatcher
) -> None:
    settings = replay_settings(seed=0, error_rate=0.5)
    app = create_replay_app(
        settings, replay_dataset, np.random.default_rng(99), matcher=replay_matcher
    )
    expected_plan = FaultPlan(settings, np.random.default_rng(99))
    expected = [expected_plan.draw().kind for _ in range(20)]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client:
        got = [
            (await client.post(COMPLETIONS, json=chat("hi"))).headers["x-replay-fault"]
            for _ in range(20)
        ]
    assert got == expected


def test_a_matcher_over_another_dataset_is_refused(
    replay_matcher: PromptMatcher, replay_dataset: ReplayDataset
) -> None:
    other = ReplayDataset(models=replay_dataset.models, records=replay_dataset.records[:5])
    with pytest.raises(ValueError, match="another dataset"):
        create_replay_app(replay_settings(), other, matcher=replay_matcher)


async def test_json_requests_get_the_recorded_answer_as_json(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = next(r for r in replay_dataset if r.task == "mbpp")
    recorded = record.outcome(MODEL).response
    plain = await replay_client.post(
        COMPLETIONS, json=chat(record.prompt, response_format={"type": "json_object"})
    )
    schema = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}
    shaped = await replay_client.post(
        COMPLETIONS,
        json=chat(
            record.prompt,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
        ),
    )
    assert json.loads(plain.json()["choices"][0]["message"]["content"]) == {"answer": recorded}
    assert json.loads(shaped.json()["choices"][0]["message"]["content"]) == {"code": recorded}


async def test_stop_ends_the_answer_before_the_sequence(
    replay_client: httpx.AsyncClient, replay_dataset: ReplayDataset
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 200)
    recorded = record.outcome(MODEL).response
    stop = recorded[30:34]
    response = await replay_client.post(COMPLETIONS, json=chat(record.prompt, stop=[stop, "@@"]))
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == recorded[: recorded.find(stop)]
    assert choice["finish_reason"] == "stop"
