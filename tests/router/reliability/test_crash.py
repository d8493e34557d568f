"""kill -9 under load: the restarted service restores the newest snapshot, then learns again
exactly the rewards logged after it: every logged reward is learned once, none twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from router.tools.replay_pool.dataset import ReplayDataset
from store.database import Database
from store.embedded import EmbeddedPostgres
from tests.router.reliability.store_counts import counts

PRE_ONLY = {"escalation": False, "components": False, "judge": "never"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(database_url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "SIGNALROUTE_DATABASE_URL": database_url,
        "SIGNALROUTE_SNAPSHOT_EVERY": "20",
        "SIGNALROUTE_SEED": "3",
        "SIGNALROUTE_LOG_LEVEL": "warning",
        "SIGNALROUTE_REPLAY_STREAM_CHUNKS_PER_S": "100000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "router.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def snapshot_with_at_least(database: Database, updates: int, timeout_s: float = 10) -> None:
    """Wait until a snapshot of ``pre`` that learned at least ``updates`` rewards is stored."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with database.connection() as conn:
            cursor = await conn.execute(
                "SELECT max((meta->>'updates')::int) FROM policy_snapshots WHERE name = 'pre'"
            )
            row = await cursor.fetchone()
        if row is not None and row[0] is not None and int(row[0]) >= updates:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no snapshot of pre with {updates} updates within {timeout_s} s")


@pytest.mark.usefixtures("replay_data_dir")
async def test_kill_9_under_load_loses_no_learning_and_applies_nothing_twice(
    embedded_postgres: EmbeddedPostgres, replay_dataset: ReplayDataset
) -> None:
    url = embedded_postgres.create_database("signalroute_crash")
    database = await Database.connect(url)
    async with database.connection() as conn:
        await conn.execute("TRUNCATE requests, decisions, rewards, policy_snapshots CASCADE")
    prompts = [r.prompt for r in replay_dataset][:80]
    port = free_port()
    with serving(url, port) as process:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            async def route(prompt: str) -> None:
                response = await client.post(
                    "/route-and-run",
                    json={"messages": [{"role": "user", "content": prompt}], "stages": PRE_ONLY},
                )
                assert response.status_code == 200, response.text
                body = response.json()
                feedback = await client.post(
                    "/feedback", json={"request_id": body["id"], "reward": 1.0, "source": "user"}
                )
                assert feedback.status_code == 201, feedback.text

            for start in range(0, 55, 11):
                await asyncio.gather(*(route(p) for p in prompts[start : start + 11]))
            # 110 updates have passed the snapshot threshold (every 20): once that snapshot is
            # in the store, four more requests log 8 rewards after it, too few for the next.
            await snapshot_with_at_least(database, 100)
            for prompt in prompts[55:59]:
                await route(prompt)
            # Load still in flight when the process dies.
            in_flight = [asyncio.create_task(route(p)) for p in prompts[59:80]]
            await asyncio.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            await asyncio.gather(*in_flight, return_exceptions=True)

    logged, _, highest = await counts(database)
    assert logged >= 110  # 55 answered requests: an immediate and a user reward each
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT max((meta->>'updates')::int) FROM policy_snapshots WHERE name = 'pre'"
        )
        row = await cursor.fetchone()
    assert row is not None
    snapshot_updates = int(row[0])
    assert 0 < snapshot_updates < logged, "some logged rewards must postdate the snapshot"

    with serving(url, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            policies = (await client.get("/policies")).json()
    pre = next(p for p in policies["policies"] if p["stage"] == "pre")
    relogged, remarked, rehighest = await counts(database)
    await database.close()
    assert relogged == logged
    # Every logged reward is now marked as learned, each with its own update number, and the
    # restored policy counts exactly those updates: nothing learned twice, nothing skipped.
    assert remarked == logged
    assert pre["updates"] == rehighest >= logged
    assert highest <= rehighest
