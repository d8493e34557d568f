"""The store hangs under load (its processes stopped: connections open, nothing answers):
the writer's transaction runs out of time, the store counts as down, journals go to the
spool, requests are answered, and once the store answers again every request is there with
its decision and reward, exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI

from router.app import create_app
from router.tools.replay_pool.dataset import ReplayDataset
from store.database import Database
from store.embedded import EmbeddedPostgres
from tests.router.reliability.store_counts import requests_by_status
from tests.router.reliability.test_store_outage import (
    PRE_ONLY,
    route,
    service_settings,
    wait_until,
)
from tests.router.service.conftest import run_service


def server_processes(pg_data_dir: Path) -> set[int]:
    """The postmaster serving ``pg_data_dir`` and its children."""
    found = subprocess.run(["pgrep", "-f", str(pg_data_dir)], capture_output=True, text=True)
    postmasters = {int(pid) for pid in found.stdout.split()}
    children: set[int] = set()
    for pid in postmasters:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        children |= {int(kid) for kid in kids.stdout.split()}
    return postmasters | children


@contextmanager
def hung(pids: set[int]) -> Iterator[None]:
    """``pids`` stopped (SIGSTOP) while the block runs, continued however it ends."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def test_routing_survives_a_store_that_hangs_and_loses_nothing(
    pg_data_dir: Path, tmp_path: Path, replay_app: FastAPI, replay_dataset: ReplayDataset
) -> None:
    server = EmbeddedPostgres()
    url = server.start(pg_data_dir)
    prompts = [r.prompt for r in replay_dataset][:51]
    settings = service_settings(  # a bound the requests sent during the hang pass at once
        url, tmp_path, journal_backlog=8, journal_write_timeout_s=1.0, store_read_timeout_s=0.5
    )
    try:
        async with run_service(
            create_app(settings, replay_app=replay_app), settings.port
        ) as client:
            before = await asyncio.gather(*(route(client, p) for p in prompts[:10]))
            assert client.runtime.writer is not None
            await client.runtime.writer.drain()
            processes = server_processes(pg_data_dir)
            assert processes, "the embedded server's processes are found"
            with hung(processes):
                # A conversation this process holds no turn of: its previous arm is asked of
                # the store, which does not answer; past the read timeout the request goes on.
                response = await asyncio.wait_for(
                    client.post(
                        "/route-and-run",
                        json={
                            "messages": [{"role": "user", "content": prompts[50]}],
                            "session": "a session this process has not seen",
                            "stages": PRE_ONLY,
                        },
                    ),
                    30,
                )
                assert response.status_code == 200, response.text
                # Answered, not held at the door: the first transaction runs out of time
                # (1 s, then psycopg's cancellation), and the rest goes to the spool.
                during = await asyncio.wait_for(
                    asyncio.gather(*(route(client, p) for p in prompts[10:40])), 60
                )
                during.append(response.json())
                await asyncio.wait_for(client.runtime.writer.drain(), 30)
                assert client.runtime.writer.spooled >= 31
            await wait_until(client, lambda body: "spooled_journals" not in body, timeout_s=60)
            after = await asyncio.gather(*(route(client, p) for p in prompts[40:50]))
            await client.runtime.writer.drain()
        database = await Database.connect(url)
        try:
            routed = [b["id"] for b in (*before, *during, *after)]
            rows = await requests_by_status(database, routed)
        finally:
            await database.close()
    finally:
        server.stop()
    assert rows == [("completed", 51, 51, 51, 51)]  # each with its decision and reward, once
    assert not any((tmp_path / "data" / "spool").glob("*.json"))
