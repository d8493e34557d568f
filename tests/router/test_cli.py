"""``signalroute serve`` fails with one clear line (exit code 2) on each kind of bad setup."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("signalroute: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_invalid_pool_file(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text("arms:\n  - name: a\n    base_url: ftp://x\n    model: m\n")
    line = error_line(serve("--config", str(pool)))
    assert f"{pool}: arms.0.base_url" in line
    assert "http://" in line


def test_missing_replay_data(tmp_path: Path) -> None:
    line = error_line(serve(env={"SIGNALROUTE_REPLAY_DATA": str(tmp_path / "nowhere")}))
    assert "replay data not found" in line
    assert "SIGNALROUTE_REPLAY_DATA" in line


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line(serve("--port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}" in line


@pytest.mark.usefixtures("replay_data_dir")
def test_unreachable_database_url_is_named_without_its_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"postgresql://router:hunter2@127.0.0.1:{closed_port}/routing"
    line = error_line(serve("--port", "0", env={"SIGNALROUTE_DATABASE_URL": url}))
    assert "cannot connect to the database" in line
    assert "hunter2" not in line
    assert f"127.0.0.1:{closed_port}" in line


def test_every_invalid_setting_is_listed_at_once() -> None:
    result = serve(
        env={
            "SIGNALROUTE_PORT": "abc",
            "SIGNALROUTE_EPSILON": "2",
            "SIGNALROUTE_REPLAY_SEED": "x",
            "SIGNALROUTE_DATABASE_URL": "postgresql://u:secret@h/db",
        }
    )
    assert error_line(result) == "signalroute: error: 3 invalid settings:"
    assert result.stderr.splitlines()[1:] == [
        "  - SIGNALROUTE_REPLAY_SEED: Input should be a valid integer, unable to parse string "
        "as an integer (got 'x')",
        "  - SIGNALROUTE_PORT: Input should be a valid integer, unable to parse string as an "
        "integer (got 'abc')",
        "  - SIGNALROUTE_EPSILON: Input should be less than or equal to 1 (got '2')",
    ]


def test_every_problem_of_a_pool_file_stops_the_service_at_once(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text("arms:\n  - {name: a, model: m, api_key: sk-1}\n  - {name: b}\n")
    result = serve("--config", str(pool))
    assert error_line(result) == f"signalroute: error: {pool}: 4 problems:"
    assert result.stderr.splitlines()[1:] == [
        "  - arms.0.base_url: Field required",
        "  - arms.0.api_key: Extra inputs are not permitted: a pool file holds no keys: put the "
        "key in an environment variable and name the variable with api_key_env "
        "(e.g. api_key_env: OPENAI_API_KEY)",
        "  - arms.1.base_url: Field required",
        "  - arms.1.model: Field required",
    ]


@pytest.mark.parametrize("command", [["keys", "list"], ["stats"], ["learner"]])
def test_store_commands_name_an_invalid_setting_in_one_line(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", *command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SIGNALROUTE_DB_POOL_SIZE": "1"},
    )
    assert error_line(result) == (
        "signalroute: error: invalid setting: SIGNALROUTE_DB_POOL_SIZE: Input should be "
        "greater than or equal to 2 (got '1')"
    )
