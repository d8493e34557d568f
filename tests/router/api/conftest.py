"""A running service for the hostile-input tests, served from a thread with its own event
loop, so that synchronous clients (hypothesis examples, schemathesis cases) can call it.

The limits are lowered so that examples reach them cheaply: 64 KiB bodies, 50 messages,
20,000 characters of prompt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from router.app import create_app
from router.settings import DEFAULT_KEEP_ALIVE_S, Settings
from tests.router.service.conftest import free_port

MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGES = 50
MAX_PROMPT_CHARS = 20_000


@dataclass(frozen=True)
class LiveService:
    url: str
    app: FastAPI
    settings: Settings


@contextmanager
def serve_in_thread(app: FastAPI, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on ``port`` from a daemon thread; yield its base URL."""
    config = uvicorn.Config(  # idle connections kept as the service keeps them (see cli)
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=DEFAULT_KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"service-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def live(database_url: str, replay_app: FastAPI) -> Iterator[LiveService]:
    port = free_port()
    settings = Settings(
        database_url=database_url,
        port=port,
        seed=1,
        max_body_bytes=MAX_BODY_BYTES,
        max_messages=MAX_MESSAGES,
        max_prompt_chars=MAX_PROMPT_CHARS,
    )
    app = create_app(settings, replay_app=replay_app)
    with serve_in_thread(app, port) as url:
        yield LiveService(url, app, settings)


@pytest.fixture(scope="module")
def client(live: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client
