"""The replay pool behind a real uvicorn server on 127.0.0.1: paced streams and real cuts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from router.settings import DEFAULT_KEEP_ALIVE_S
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.replay_pool.matching import PromptMatcher
from tests.router.conftest import (
    parse_sse,
    record_with_long_answer,
    replay_settings,
    streamed_content,
)
from tests.router.threaded_server import threaded_server

MODEL = "gpt-4-1106-preview"
CHUNKS_PER_S = 100.0


@pytest.fixture(scope="module")
def paced_app(replay_matcher: PromptMatcher) -> FastAPI:
    settings = replay_settings(stream_chunks_per_s=CHUNKS_PER_S, stream_chunk_chars=16)
    return create_replay_app(settings, matcher=replay_matcher)


@pytest.fixture(scope="module")
def server_url(paced_app: FastAPI) -> Iterator[str]:
    """Serve the app from a thread on a free port; stop it after the module."""
    config = uvicorn.Config(
        paced_app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="critical",
        timeout_keep_alive=DEFAULT_KEEP_ALIVE_S,  # as the replay pool keeps them (see cli)
    )
    with threaded_server(config, "replay-uvicorn") as url:
        yield url


def body(prompt: str) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def read_lines(
    client: httpx.AsyncClient, payload: dict[str, object], headers: dict[str, str], into: list[str]
) -> None:
    """Stream a completion, appending each line to ``into`` (kept if the stream breaks)."""
    async with client.stream(
        "POST", "/v1/chat/completions", json=payload, headers=headers
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            into.append(line)


async def test_a_stream_arrives_paced_over_real_http(
    server_url: str, replay_dataset: ReplayDataset
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 400)
    recorded = record.outcome(MODEL).response
    deltas = -(-len(recorded) // 16)
    arrivals: list[float] = []
    text: list[str] = []
    async with httpx.AsyncClient(base_url=server_url) as client:
        started = time.perf_counter()
        async with client.stream("POST", "/v1/chat/completions", json=body(record.prompt)) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["x-replay-prompt-id"] == record.prompt_id
            async for line in r.aiter_lines():
                if line:
                    arrivals.append(time.perf_counter() - started)
                    text.append(line + "\n\n")
    payloads = parse_sse("".join(text))
    assert streamed_content(payloads) == recorded
    assert payloads[-2]["usage"]["cost_usd"] == record.outcome(MODEL).cost_usd
    assert payloads[-1] == "[DONE]"
    # Deltas are paced at CHUNKS_PER_S, and the first arrives long before the last.
    assert arrivals[-1] >= (deltas - 1) / CHUNKS_PER_S
    assert arrivals[1] < arrivals[-1] / 2


async def test_a_cut_stream_breaks_the_connection(
    server_url: str, replay_dataset: ReplayDataset
) -> None:
    record = record_with_long_answer(replay_dataset, MODEL, 400)
    received: list[str] = []
    async with httpx.AsyncClient(base_url=server_url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await read_lines(client, body(record.prompt), {"x-replay-fault": "cut"}, received)
    assert received[0].startswith("data: ")
    assert "data: [DONE]" not in received
