"""A running service for the hostile-input tests, served from a thread with its own event
loop, so that synchronous clients (hypothesis examples, schemathesis cases) can call it.

The limits are lowered so that examples reach them cheaply: 64 KiB bodies, 50 messages,
20,000 characters of prompt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from router.app import create_app
from router.background import serve_in_background
from router.settings import Settings

MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGES = 50
MAX_PROMPT_CHARS = 20_000


@dataclass(frozen=True)
class LiveService:
    url: str
    app: FastAPI
    settings: Settings


@pytest.fixture(scope="module")
def live(database_url: str, replay_app: FastAPI) -> Iterator[LiveService]:
    settings = Settings(
        database_url=database_url,
        port=0,
        seed=1,
        max_body_bytes=MAX_BODY_BYTES,
        max_messages=MAX_MESSAGES,
        max_prompt_chars=MAX_PROMPT_CHARS,
    )
    with serve_in_background(
        settings, app_factory=lambda bound: create_app(bound, replay_app=replay_app)
    ) as service:
        yield LiveService(service.base_url, service.app, service.settings)


@pytest.fixture(scope="module")
def client(live: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client
