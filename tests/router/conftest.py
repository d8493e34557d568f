"""Fixtures for the replay pool: the real RouterBench data, loaded once per session.

The data lives outside the repository (``<repo>/../shared/data/routerbench``, or wherever
SIGNALROUTE_REPLAY_DATA points); tests that need it are skipped, saying so, when it is absent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from router.settings import ReplaySettings
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord, load_routerbench
from router.tools.replay_pool.matching import PromptMatcher

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "routerbench"
BASE_URL = "http://replay.test"
STALL_MS = 120.0


def replay_settings(**overrides: Any) -> ReplaySettings:
    """Settings for fast tests: streams are paced at 100k chunks/s, stalls last STALL_MS."""
    values: dict[str, Any] = {"stream_chunks_per_s": 100_000.0, "stall_ms": STALL_MS}
    values.update(overrides)
    return ReplaySettings(**values)


def parse_sse(body: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body: decoded JSON chunks, and the string ``[DONE]``."""
    payloads: list[Any] = []
    for event in body.split("\n\n"):
        if not event.strip():
            continue
        assert event.startswith("data: "), event
        data = event[len("data: ") :]
        payloads.append(data if data == "[DONE]" else json.loads(data))
    return payloads


def streamed_content(payloads: list[Any]) -> str:
    """The assistant text carried by a stream's chunks."""
    return "".join(
        choice["delta"].get("content") or ""
        for payload in payloads
        if isinstance(payload, dict)
        for choice in payload["choices"]
    )


def record_with_long_answer(dataset: ReplayDataset, model: str, min_chars: int) -> ReplayRecord:
    """The first record whose ``model`` answer has at least ``min_chars`` characters."""
    return next(r for r in dataset if len(r.outcome(model).response) >= min_chars)


@pytest.fixture(scope="session")
def replay_data_dir() -> Path:
    path = ReplaySettings().data or DEFAULT_DATA
    if not (path / "mbpp_test.csv").is_file():
        pytest.skip(
            f"RouterBench data not found at {path}: set SIGNALROUTE_REPLAY_DATA to the folder "
            "holding {arc_challenge,mbpp,winograde}_{train,test}.csv"
        )
    return path


@pytest.fixture(scope="session")
def replay_dataset(replay_data_dir: Path) -> ReplayDataset:
    return load_routerbench(replay_data_dir)


@pytest.fixture(scope="session")
def replay_matcher(replay_dataset: ReplayDataset) -> PromptMatcher:
    return PromptMatcher(replay_dataset)


@pytest.fixture(scope="session")
def replay_app(replay_dataset: ReplayDataset, replay_matcher: PromptMatcher) -> FastAPI:
    return create_replay_app(replay_settings(), replay_dataset, matcher=replay_matcher)


@pytest.fixture
async def replay_client(replay_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the session's app; app exceptions (a cut) reach the test."""
    transport = httpx.ASGITransport(replay_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
async def cut_tolerant_client(replay_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that, like a real one, gets the part of the body sent before a cut."""
    transport = httpx.ASGITransport(replay_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client
