"""The serving process's garbage collection: its start-up heap frozen, young collections
rarer; only in the process that serves, never in one that builds many apps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import router.app
from router.app import create_app
from router.heap import settle_heap
from router.settings import Settings
from router.tools.service_bench.processes import free_port


class FakeCollector:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threshold = (700, 10, 10)

    def collect(self, generation: int = 2) -> int:
        self.calls.append(f"collect {generation}")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def get_freeze_count(self) -> int:
        return 1234

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, threshold0: int, threshold1: int, threshold2: int, /) -> None:
        self.calls.append("set_threshold")
        self.threshold = (threshold0, threshold1, threshold2)


def test_the_heap_is_collected_then_frozen_and_the_young_threshold_raised() -> None:
    collector = FakeCollector()
    collector.threshold = (700, 15, 20)
    assert settle_heap(10_000, collector) == 1234
    assert collector.calls == ["collect 2", "freeze", "set_threshold"]
    assert collector.threshold == (10_000, 15, 20)  # the older generations' stay


def test_a_threshold_of_zero_leaves_the_collector_alone() -> None:
    collector = FakeCollector()
    assert settle_heap(0, collector) is None
    assert collector.calls == []
    assert collector.threshold == (700, 10, 10)


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="young threshold must be >= 0, got -1"):
        settle_heap(-1, FakeCollector())


def test_the_real_collector_freezes_and_takes_the_threshold() -> None:
    code = (
        "import gc; from router.heap import settle_heap; "
        "frozen = settle_heap(12345); "
        "assert frozen == gc.get_freeze_count() > 1000, frozen; "
        "assert gc.get_threshold()[0] == 12345; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("owns_process", [True, False])
def test_only_an_app_that_owns_its_process_settles_the_heap(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    replay_app: FastAPI,
    owns_process: bool,
) -> None:
    settled: list[int] = []
    monkeypatch.setattr(router.app, "settle_heap", lambda threshold: settled.append(threshold))
    settings = Settings(database_url=database_url, seed=1, gc_young_threshold=4321)
    app = create_app(settings, replay_app=replay_app, owns_process=owns_process)
    with TestClient(app):  # started: the runtime is open
        assert settled == ([4321] if owns_process else [])


@pytest.mark.usefixtures("replay_data_dir")
def test_signalroute_serve_settles_its_heap_once_it_is_up(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "SIGNALROUTE_DATABASE_URL": database_url,
        "SIGNALROUTE_LOG_LEVEL": "info",
        "SIGNALROUTE_GC_YOUNG_THRESHOLD": "7777",
    }
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while "start-up objects frozen" not in log.read_text():
                assert child.poll() is None, f"the service exited: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.2)
        finally:
            child.terminate()
            child.wait(timeout=30)
    line = next(x for x in log.read_text().splitlines() if "start-up objects frozen" in x)
    assert "young collections every 7777 allocations" in line
    frozen = int(line.split("garbage collection: ")[1].split()[0])
    assert frozen > 10_000  # the modules, the app and the runtime
