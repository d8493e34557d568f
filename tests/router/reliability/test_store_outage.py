"""The store goes down under load: routing goes on (historical signals from the in-process
history index, or marked missing without it), journals are spooled on local disk, and once
the store is back every accepted request is there with its decisions and rewards, exactly
once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from router.app import create_app
from router.settings import Settings
from router.tools.replay_pool.dataset import ReplayDataset
from store.database import Database
from store.embedded import EmbeddedPostgres
from tests.router.reliability.store_counts import requests_by_status
from tests.router.service.conftest import free_port, run_service

PRE_ONLY = {"escalation": False, "components": False, "judge": "never"}


async def route(client: httpx.AsyncClient, prompt: str) -> dict[str, Any]:
    response = await client.post(
        "/route-and-run",
        json={"messages": [{"role": "user", "content": prompt}], "stages": PRE_ONLY},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_until(client: httpx.AsyncClient, predicate: Any, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = (await client.get("/readyz")).json()
        if predicate(body):
            return
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.25)


def service_settings(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """A service on the store at ``url``: a free port, a fixed seed, five neighbours, its
    data (and spool) under ``tmp_path``."""
    return Settings(
        database_url=url,
        port=free_port(),
        seed=5,
        data_dir=tmp_path / "data",
        knn_k=5,
        **overrides,
    )


@pytest.mark.parametrize("history_index", [True, False], ids=["index", "store-look-up"])
async def test_routing_survives_a_store_outage_and_loses_nothing(
    pg_data_dir: Path,
    tmp_path: Path,
    replay_app: FastAPI,
    replay_dataset: ReplayDataset,
    history_index: bool,
) -> None:
    server = EmbeddedPostgres()
    url = server.start(pg_data_dir)
    prompts = [r.prompt for r in replay_dataset][:60]
    settings = service_settings(url, tmp_path, history_index=history_index)
    try:
        async with run_service(
            create_app(settings, replay_app=replay_app), settings.port
        ) as client:
            before = await asyncio.gather(*(route(client, p) for p in prompts[:20]))
            assert all(
                not b["trace"]["decisions"][0]["signals"]["historical"].get("missing")
                for b in before
            )

            server.stop()
            await wait_until(client, lambda body: body["store"] == "unreachable")
            during = await asyncio.gather(*(route(client, p) for p in prompts[20:40]))
            for body in during:
                historical = body["trace"]["decisions"][0]["signals"]["historical"]
                # The index answers from what it held when the store went; the store cannot.
                assert historical.get("missing") == (None if history_index else 1.0), historical
            # Journals of the requests before it may have been on their way too.
            await wait_until(client, lambda body: body.get("spooled_journals", 0) >= 20)
            assert any((tmp_path / "data" / "spool").glob("*.json"))

            server.start(pg_data_dir)
            await wait_until(
                client,
                lambda body: body["store"] == "ok" and "spooled_journals" not in body,
            )
            after = await asyncio.gather(*(route(client, p) for p in prompts[40:60]))
    finally:
        server.stop()
        server.start(pg_data_dir)

    database = await Database.connect(url)
    try:
        ids = [b["id"] for b in (*before, *during, *after)]
        rows = await requests_by_status(database, ids)
        async with database.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM query_embeddings WHERE request_id = ANY(%s::uuid[])", (ids,)
            )
            embeddings = await cursor.fetchone()
    finally:
        await database.close()
        server.stop()
    # 60 requests, one decision and one immediate reward each, every one exactly once.
    assert rows == [("completed", 60, 60, 60, 60)]
    assert embeddings == (60,)
    assert not any((tmp_path / "data" / "spool").glob("*.json"))
