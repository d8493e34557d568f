"""``signalroute check``: every problem of a pool file at once, and ``--probe`` over real
HTTP (a fake OpenAI server that answers beside a port where nothing listens)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from router.cli import main
from tests.router.fake_openai import FakeOpenAI
from tests.router.threaded_server import threaded_server


def check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def fake_openai_url() -> Iterator[str]:
    config = uvicorn.Config(FakeOpenAI(answer="ok").app(), port=0, log_level="warning")
    with threaded_server(config, "check-fake-openai") as url:
        yield url


def test_a_bad_file_gets_every_problem_and_exit_status_1(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        "arms:\n"
        "  - {name: a, model: m, api_key: sk-1}\n"
        "  - {name: b, base_url: ftp://x, model: m}\n"
        "escalation_targets: [c]\n"
    )
    result = check("--config", str(pool))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{pool}: invalid, 4 problems:",
        "  error: arms.0.base_url: Field required",
        "  error: arms.0.api_key: Extra inputs are not permitted: a pool file holds no keys: "
        "put the key in an environment variable and name the variable with api_key_env "
        "(e.g. api_key_env: OPENAI_API_KEY)",
        "  error: arms.1.base_url: must start with http:// or https:// (or {self} for this router)",
        "  error: escalation_targets: escalation_targets name unknown arms: c",
    ]


def test_a_valid_file_passes_and_an_unset_key_variable_is_a_warning(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        "arms:\n"
        "  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m, api_key_env: SR_TEST_KEY}\n"
        "  - {name: b, base_url: 'http://127.0.0.1:9/v1', model: m}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SR_TEST_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "check", "--config", str(pool)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{pool}: valid: 2 arms (a, b); profiles signalroute/auto",
        "1 warning:",
        "  warning: arms.0.api_key_env: a: the environment variable SR_TEST_KEY is not set, "
        "so its calls carry no API key",
    ]
    assert check("--config", str(pool), "--strict", env={"SR_TEST_KEY": ""}).returncode == 1
    assert check("--config", str(pool), env={"SR_TEST_KEY": "sk-test"}).stdout.splitlines() == [
        f"{pool}: valid: 2 arms (a, b); profiles signalroute/auto"
    ]


def test_the_demo_pool_file_is_valid() -> None:
    demo = Path(__file__).resolve().parents[3] / "router" / "demo_pool.yaml"
    result = check("--config", str(demo))
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith(f"{demo}: valid: 14 arms (")


def test_unreadable_and_missing_files_are_one_error_line(tmp_path: Path) -> None:
    missing = check("--config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("signalroute: error: cannot read pool file")
    env = {k: v for k, v in os.environ.items() if k != "SIGNALROUTE_POOL_CONFIG"}
    unnamed = subprocess.run(
        [sys.executable, "-m", "router.cli", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert unnamed.returncode == 2
    assert "pass --config FILE or set SIGNALROUTE_POOL_CONFIG" in unnamed.stderr


def test_probe_reports_which_arms_answer(
    tmp_path: Path, fake_openai_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        "arms:\n"
        f"  - {{name: working, base_url: '{fake_openai_url}/v1', model: m}}\n"
        f"  - {{name: closed, base_url: 'http://127.0.0.1:{port}/v1', model: m}}\n"
        f"judge: {{name: grader, base_url: '{{self}}/v1', model: j}}\n"
    )
    code = main(["check", "--config", str(pool), "--probe", "--router-url", fake_openai_url])
    out = capsys.readouterr().out
    assert code == 1  # one arm did not answer
    lines = out.splitlines()
    assert "probe: 2 of 3 answered" in lines
    rows = {line.split()[0]: line for line in lines[lines.index("probe: 2 of 3 answered") + 3 :]}
    assert set(rows) == {"working", "closed", "grader"}
    assert rows["working"].split()[1] == "yes"
    assert rows["working"].rstrip().endswith("'ok'")
    assert rows["grader"].split()[2] == "yes"  # the judge, reached through {self}
    assert rows["closed"].split()[1] == "no"
    assert f"ConnectError talking to http://127.0.0.1:{port}/v1/chat/completions" in out

    pool.write_text(f"arms:\n  - {{name: working, base_url: '{fake_openai_url}/v1', model: m}}\n")
    assert main(["check", "--config", str(pool), "--probe"]) == 0
    assert "probe: 1 of 1 answered" in capsys.readouterr().out
