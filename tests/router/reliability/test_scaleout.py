"""Two router replicas share one Postgres; one learner learns what both logged and both pick
up its snapshots."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.tools.replay_pool.dataset import ReplayDataset
from store.database import Database
from store.embedded import EmbeddedPostgres
from tests.router.reliability.store_counts import counts
from tests.router.service.keys import new_key

PRE_ONLY = {"escalation": False, "components": False, "judge": "never"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``signalroute ARGS`` in a child process with ``env`` added to the environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "router.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def process(args: list[str], env: dict[str, str], ready: str | None) -> Iterator[None]:
    child = spawn(args, env)
    try:
        deadline = time.monotonic() + 60
        while ready is not None:
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert child.poll() is None, f"{args[0]} exited"
            assert time.monotonic() < deadline, f"{args[0]} did not become ready"
            time.sleep(0.2)
        yield
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()


async def pre_updates(client: httpx.AsyncClient) -> int:
    policies = (await client.get("/policies")).json()["policies"]
    return int(next(p["updates"] for p in policies if p["stage"] == "pre"))


@pytest.mark.usefixtures("replay_data_dir")
async def test_rewards_from_two_replicas_reach_one_learner_and_its_policy_reaches_both(
    embedded_postgres: EmbeddedPostgres, replay_dataset: ReplayDataset, tmp_path: Path
) -> None:
    url = embedded_postgres.create_database("signalroute_scaleout")
    database = await Database.connect(url)
    async with database.connection() as conn:
        await conn.execute("TRUNCATE requests, decisions, rewards, policy_snapshots CASCADE")
    common = {
        "SIGNALROUTE_DATABASE_URL": url,
        "SIGNALROUTE_LOG_LEVEL": "warning",
        "SIGNALROUTE_REPLAY_STREAM_CHUNKS_PER_S": "100000",
        "SIGNALROUTE_SNAPSHOT_EVERY": "1000",
    }
    replica = {**common, "SIGNALROUTE_ROLE": "replica", "SIGNALROUTE_POLICY_REFRESH_S": "0.5"}
    ports = [free_port(), free_port()]
    prompts = [r.prompt for r in replay_dataset][:40]
    with ExitStack() as stack:
        stack.enter_context(process(["learner", "--publish-every-s", "0.5"], common, None))
        for index, port in enumerate(ports):
            env = {**replica, "SIGNALROUTE_DATA_DIR": str(tmp_path / f"replica{index}")}
            stack.enter_context(
                process(["serve", "--port", str(port)], env, f"http://127.0.0.1:{port}/readyz")
            )
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=30) as first,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}", timeout=30) as second,
        ):
            versions: list[dict[str, Any]] = []
            for index, prompt in enumerate(prompts):
                client = (first, second)[index % 2]
                body = {"messages": [{"role": "user", "content": prompt}], "stages": PRE_ONLY}
                routed = (await client.post("/route-and-run", json=body)).json()
                versions.append(routed["trace"]["decisions"][0])
                feedback = await client.post(
                    "/feedback", json={"request_id": routed["id"], "reward": 0.5}
                )
                assert feedback.status_code == 201, feedback.text
            # Replicas learn nothing themselves: what they decided with came from snapshots.
            assert versions[0]["policy_version"] == 0

            logged, _, _ = await counts(database)
            assert logged == 80  # 40 immediate + 40 feedback rewards, from both replicas

            deadline = asyncio.get_running_loop().time() + 30
            while True:
                seen = [await pre_updates(first), await pre_updates(second)]
                if seen == [logged, logged]:
                    break
                assert asyncio.get_running_loop().time() < deadline, seen
                await asyncio.sleep(0.25)

    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*), count(DISTINCT w.policy_update) FROM rewards w "
            "JOIN decisions d ON d.id = w.decision_id WHERE d.stage = 'pre'"
        )
        marked = await cursor.fetchone()
    await database.close()
    # The learner learned each reward once, with its own update number.
    assert marked == (80, 80)


@pytest.mark.usefixtures("replay_data_dir")
async def test_a_terminated_learner_publishes_what_it_learned(
    embedded_postgres: EmbeddedPostgres, replay_dataset: ReplayDataset, tmp_path: Path
) -> None:
    """SIGTERM ends the learner cleanly: rewards it learned since its last snapshot are in a
    final one (here the only one: it never publishes on its own during the test)."""
    url = embedded_postgres.create_database("signalroute_learner_stop")
    database = await Database.connect(url)
    common = {
        "SIGNALROUTE_DATABASE_URL": url,
        "SIGNALROUTE_LOG_LEVEL": "warning",
        "SIGNALROUTE_REPLAY_STREAM_CHUNKS_PER_S": "100000",
        "SIGNALROUTE_SNAPSHOT_EVERY": "100000",
    }
    replica = {**common, "SIGNALROUTE_ROLE": "replica", "SIGNALROUTE_DATA_DIR": str(tmp_path)}
    port = free_port()
    learner = spawn(["learner", "--publish-every-s", "3600"], common)
    try:
        with process(["serve", "--port", str(port)], replica, f"http://127.0.0.1:{port}/readyz"):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for prompt in [r.prompt for r in replay_dataset][:10]:
                    body = {"messages": [{"role": "user", "content": prompt}], "stages": PRE_ONLY}
                    assert (await client.post("/route-and-run", json=body)).status_code == 200
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # the learner has learned every logged reward
            logged, learned, _ = await counts(database)
            if (logged, learned) == (10, 10):
                break
            assert asyncio.get_running_loop().time() < deadline, (logged, learned)
            await asyncio.sleep(0.25)
        async with database.connection() as conn:
            cursor = await conn.execute("SELECT count(*) FROM policy_snapshots WHERE name = 'pre'")
            assert await cursor.fetchone() == (0,)  # nothing published yet
        learner.terminate()
        assert learner.wait(timeout=30) == 0
    finally:
        if learner.poll() is None:
            learner.kill()
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT (meta->>'updates')::int FROM policy_snapshots WHERE name = 'pre' "
            "ORDER BY version DESC LIMIT 1"
        )
        newest = await cursor.fetchone()
    await database.close()
    assert newest == (10,)


async def tenant_updates(client: httpx.AsyncClient, token: str) -> tuple[str, int]:
    listed = (await client.get("/policies", headers={"authorization": f"Bearer {token}"})).json()
    pre = next(p for p in listed["policies"] if p["stage"] == "pre")
    return str(pre["policy"]), int(pre["updates"])


@pytest.mark.usefixtures("replay_data_dir")
async def test_with_keys_the_learner_keeps_each_tenants_policy_apart_on_every_replica(
    embedded_postgres: EmbeddedPostgres, replay_dataset: ReplayDataset, tmp_path: Path
) -> None:
    """Keys mode across processes: the learner learns each tenant's logged rewards into that
    tenant's own policy and publishes it under its name; both replicas serve each tenant its
    own policy, and a flood of reward 0 from one tenant leaves the other's as it was."""
    url = embedded_postgres.create_database("signalroute_scaleout_tenants")
    database = await Database.connect(url)
    async with database.connection() as conn:
        await conn.execute("TRUNCATE requests, decisions, rewards, policy_snapshots CASCADE")
    acme, _ = await new_key(database, "acme")
    beta, _ = await new_key(database, "beta")
    common = {
        "SIGNALROUTE_DATABASE_URL": url,
        "SIGNALROUTE_LOG_LEVEL": "warning",
        "SIGNALROUTE_REPLAY_STREAM_CHUNKS_PER_S": "100000",
        "SIGNALROUTE_AUTH": "keys",
        "SIGNALROUTE_TENANT_MIN_REWARDS": "0",
    }
    replica = {**common, "SIGNALROUTE_ROLE": "replica", "SIGNALROUTE_POLICY_REFRESH_S": "0.5"}
    ports = [free_port(), free_port()]
    prompts = [r.prompt for r in replay_dataset][:10]

    async def wait_for(
        clients: tuple[httpx.AsyncClient, ...], token: str, expected: tuple[str, int]
    ) -> None:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            seen = [await tenant_updates(c, token) for c in clients]
            if all(s == expected for s in seen):
                return
            assert asyncio.get_running_loop().time() < deadline, (seen, expected)
            await asyncio.sleep(0.25)

    with ExitStack() as stack:
        stack.enter_context(process(["learner", "--publish-every-s", "0.5"], common, None))
        for index, port in enumerate(ports):
            env = {**replica, "SIGNALROUTE_DATA_DIR": str(tmp_path / f"replica{index}")}
            stack.enter_context(
                process(["serve", "--port", str(port)], env, f"http://127.0.0.1:{port}/readyz")
            )
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=30) as first,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}", timeout=30) as second,
        ):

            async def route_and_reward(index: int, token: str, prompt: str, reward: float) -> None:
                client = (first, second)[index % 2]
                headers = {"authorization": f"Bearer {token}"}
                body = {"messages": [{"role": "user", "content": prompt}], "stages": PRE_ONLY}
                routed = (await client.post("/route-and-run", json=body, headers=headers)).json()
                feedback = await client.post(
                    "/feedback",
                    json={"request_id": routed["id"], "reward": reward},
                    headers=headers,
                )
                assert feedback.status_code == 201, feedback.text

            for index, prompt in enumerate(prompts[:4]):
                await route_and_reward(index, beta, prompt, 1.0)
            # 4 immediate rewards and 4 of feedback, learned by beta's own policy.
            await wait_for((first, second), beta, ("pre:tenant:beta", 8))
            for index, prompt in enumerate(prompts * 2):
                await route_and_reward(index, acme, prompt, 0.0)
            await wait_for((first, second), acme, ("pre:tenant:acme", 40))
            beta_after = [await tenant_updates(c, beta) for c in (first, second)]

    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT w.policy_name, count(*), count(DISTINCT w.policy_update) FROM rewards w "
            "JOIN decisions d ON d.id = w.decision_id WHERE d.stage = 'pre' "
            "GROUP BY w.policy_name ORDER BY w.policy_name"
        )
        learned = await cursor.fetchall()
    await database.close()
    assert beta_after == [("pre:tenant:beta", 8)] * 2
    assert learned == [("pre:tenant:acme", 40, 40), ("pre:tenant:beta", 8, 8)]
