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
