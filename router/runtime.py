"""The resources a running router owns: store, HTTP client, providers, pool.

``open_runtime`` is the lifespan's one job: open everything in order, hand it over, and close
it in reverse order on shutdown, whatever happened in between.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from router.pool import Pool
from router.providers import OpenAICompatProvider, Provider
from router.settings import Settings
from store.database import Database
from store.embedded import EmbeddedPostgres

log = logging.getLogger("signalroute")


@dataclass(frozen=True)
class Runtime:
    """Everything a request handler needs, opened by the lifespan."""

    settings: Settings
    pool: Pool
    database: Database
    http: httpx.AsyncClient
    providers: Mapping[str, Provider]


async def open_database(settings: Settings, stack: AsyncExitStack) -> Database:
    """Connect to ``database_url``, or start the embedded server when none is set."""
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres()
        url = embedded.start(settings.data_dir)
        stack.callback(embedded.stop)
        log.info("embedded Postgres started under %s", settings.data_dir.resolve())
    database = await Database.connect(url)
    stack.push_async_callback(database.close)
    return database


@asynccontextmanager
async def open_runtime(settings: Settings, pool: Pool) -> AsyncIterator[Runtime]:
    """Open the store, the HTTP client and one provider per arm; close them on exit."""
    async with AsyncExitStack() as stack:
        database = await open_database(settings, stack)
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        stack.push_async_callback(http.aclose)
        providers: dict[str, Provider] = {
            arm.name: OpenAICompatProvider(arm, http) for arm in pool.arms
        }
        yield Runtime(
            settings=settings, pool=pool, database=database, http=http, providers=providers
        )
