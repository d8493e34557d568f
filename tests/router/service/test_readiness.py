"""``/readyz`` per arm, over real HTTP: an arm whose port is closed beside one that answers
(the demo pool's gpt-4, served by the service itself)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.router.service.conftest import ServiceClient, ServiceFactory

WORKING = "  - {name: working, base_url: '{self}/replay/v1', model: gpt-4-1106-preview}\n"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pool_file(tmp_path: Path, port: int, *, working: bool = True) -> Path:
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        "stages: {judge: never, escalation: false, in_generation: false}\n"
        "arms:\n"
        + (WORKING if working else "")
        + f"  - {{name: closed, base_url: 'http://127.0.0.1:{port}/v1', model: m,"
        " api_key_env: SR_TEST_UNSET_KEY}\n"
    )
    return pool


async def ready(client: ServiceClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_ready_while_one_arm_serves_naming_the_arm_that_cannot(
    service: ServiceFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SR_TEST_UNSET_KEY", raising=False)
    port = closed_port()
    unreachable = f"unreachable: ConnectError at http://127.0.0.1:{port}/v1/models"
    with caplog.at_level(logging.WARNING, logger="signalroute"):
        started = service(
            pool_config=pool_file(tmp_path, port), exploration="epsilon", epsilon=1.0, anchor=False
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "arms.1.api_key_env: closed: the environment variable SR_TEST_UNSET_KEY is not set" in w
        for w in warnings
    ), warnings
    async with started as client:
        status, body = await ready(client)
        assert status == 200
        assert (body["status"], body["store"], body["arms"], body["serving_arms"]) == (
            "ready",
            "ok",
            2,
            1,
        )
        assert list(body["unavailable_arms"]) == ["closed"]
        assert body["unavailable_arms"]["closed"].startswith(unreachable)

        # Routed traffic draws the closed arm (uniformly: epsilon = 1, no rule) until its
        # circuit opens.
        for _ in range(60):
            routed = await client.post(
                "/route-and-run", json={"messages": [{"role": "user", "content": "2 + 2 = ?"}]}
            )
            assert routed.status_code == 200, routed.text
            assert routed.json()["model"] == "working"
            if not client.runtime.health.snapshot("closed").available:
                break
        status, body = await ready(client)
        assert status == 200
        reason = body["unavailable_arms"]["closed"]
        assert reason.startswith("circuit open: 100% of its last 5 calls failed; ")
        assert unreachable in reason


async def test_unavailable_when_no_arm_can_serve(service: ServiceFactory, tmp_path: Path) -> None:
    port = closed_port()
    async with service(pool_config=pool_file(tmp_path, port, working=False)) as client:
        status, body = await ready(client)
    assert status == 503
    assert (body["status"], body["store"], body["serving_arms"]) == ("unavailable", "ok", 0)
    assert list(body["unavailable_arms"]) == ["closed"]
