"""The service in a background thread: real uvicorn on a free port, real store, real HTTP."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from fastapi import FastAPI

from features.errors import ConfigError
from router.app import create_app
from router.background import serve_in_background
from router.settings import Settings
from store.database import Database


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_serves_on_a_free_port_and_stops(
    database: Database, database_url: str, replay_app: FastAPI
) -> None:
    settings = Settings(database_url=database_url, port=0, seed=1)
    with serve_in_background(
        settings, app_factory=lambda s: create_app(s, replay_app=replay_app)
    ) as service:
        port = service.settings.port
        assert port != 0
        assert service.base_url == f"http://127.0.0.1:{port}"
        assert f"signalroute:{port}" in thread_names()
        with httpx.Client(base_url=service.base_url, timeout=30) as client:
            assert client.get("/readyz").json()["status"] == "ready"
            routed = client.post(
                "/route-and-run", json={"messages": [{"role": "user", "content": "2 + 2 = ?"}]}
            )
            assert routed.status_code == 200, routed.text
        policy = service.runtime.policies.get("pre")
        deadline = time.monotonic() + 10  # the answer goes out first, then the policy learns
        while policy.updates < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert policy.updates >= 1
    assert f"signalroute:{port}" not in thread_names()
    with pytest.raises(RuntimeError, match="not running"):
        _ = service.runtime


def test_a_failed_start_says_why(replay_app: FastAPI) -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none", port=0)
    with (
        pytest.raises(ConfigError, match="did not start"),
        serve_in_background(settings, app_factory=lambda s: create_app(s, replay_app=replay_app)),
    ):
        pass


def test_a_taken_port_is_a_config_error(replay_app: FastAPI) -> None:
    with serve_in_background(
        Settings(database_url="postgresql://unused", port=0),
        app_factory=lambda s: FastAPI(),
    ) as service:
        taken = Settings(port=service.settings.port)
        with (
            pytest.raises(ConfigError, match="cannot listen"),
            serve_in_background(taken, app_factory=lambda s: FastAPI()),
        ):
            pass


def _get_on(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return sock.recv(65536)


@pytest.mark.parametrize("keep_alive_s", [1, 75])
def test_idle_connections_are_kept_as_configured(keep_alive_s: int) -> None:
    """The service closes an idle client connection after ``keep_alive_s``, not before."""
    settings = Settings(database_url="postgresql://unused", port=0, keep_alive_s=keep_alive_s)
    app = FastAPI()
    app.get("/healthz")(lambda: {"status": "ok"})
    with (
        serve_in_background(settings, app_factory=lambda s: app) as service,
        socket.create_connection(("127.0.0.1", service.settings.port), timeout=10) as sock,
    ):
        assert _get_on(sock).startswith(b"HTTP/1.1 200")
        time.sleep(2.5)  # idle: past 1 s, well inside 75 s
        if keep_alive_s < 2.5:
            assert sock.recv(65536) == b""  # closed by the server
        else:
            assert _get_on(sock).startswith(b"HTTP/1.1 200")  # the same connection, reused
