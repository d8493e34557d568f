"""A running router service: real uvicorn on a free loopback port, real embedded Postgres,
and the replay pool mounted in-process and reached over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from router.app import create_app
from router.runtime import Runtime
from router.settings import DEFAULT_KEEP_ALIVE_S, Settings
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.replay_pool.matching import PromptMatcher
from store.database import Database
from tests.router.conftest import replay_settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServiceClient(httpx.AsyncClient):
    """An HTTP client of a running service that also holds the service's app."""

    def __init__(self, app: FastAPI, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app

    @property
    def runtime(self) -> Runtime:
        runtime = self.app.state.runtime
        assert isinstance(runtime, Runtime)
        return runtime


@asynccontextmanager
async def run_service(app: FastAPI, port: int) -> AsyncIterator[ServiceClient]:
    """Serve ``app`` on ``port`` until the block ends; yield a client of it."""
    config = uvicorn.Config(  # idle connections kept as the service keeps them (see cli)
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=DEFAULT_KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            if task.done():
                task.result()
            raise RuntimeError("the service did not start")
        base_url = f"http://127.0.0.1:{port}"
        async with ServiceClient(app, base_url=base_url, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await task


ServiceFactory = Callable[..., AbstractAsyncContextManager[ServiceClient]]


@pytest.fixture
def service(
    database: Database,
    database_url: str,
    replay_app: FastAPI,
    replay_dataset: ReplayDataset,
    replay_matcher: PromptMatcher,
    tmp_path: Path,
) -> ServiceFactory:
    """Start a service (empty tables, cold policies) with optional settings overrides;
    ``replay={...}`` overrides the replay pool's settings (faults, pacing);
    ``provider_app`` serves ``{self}/replay`` instead of the replay pool."""

    spool_home = tmp_path / "service"

    def start(
        replay: dict[str, Any] | None = None,
        provider_app: FastAPI | None = None,
        **overrides: Any,
    ) -> AbstractAsyncContextManager[ServiceClient]:
        port = free_port()
        values: dict[str, Any] = {
            "database_url": database_url,
            "port": port,
            "seed": 1,
            "data_dir": spool_home,  # a test's spooled journals stay with its own database
        }
        values.update(overrides)
        settings = Settings(**values)
        pool_app = provider_app or replay_app
        if replay is not None:
            pool_app = create_replay_app(
                replay_settings(**replay), replay_dataset, matcher=replay_matcher
            )
        return run_service(create_app(settings, replay_app=pool_app), port)

    return start
