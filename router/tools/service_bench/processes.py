"""Server processes for the benchmarks: free loopback ports and a process that is ready
when its health URL answers, and stopped (SIGTERM, then SIGKILL) when the block ends."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from features.errors import ConfigError

T = TypeVar("T")

IDLE_CONNECTION_S = 1.0
"""How long a load generator keeps an idle connection: well below the 5 s servers commonly
keep theirs, so no request goes out on a connection the server is closing."""


def run_fast(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed: a load generator's own CPU comes out
    of what the measured processes get on a shared machine."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def benchmark_environment(seed: int, data: Path | None, **extra: str) -> dict[str, str]:
    """The environment of the router and replay-pool processes a benchmark starts: recorded
    answers streamed as fast as they can go, quiet logs, a fixed seed."""
    env = {
        **os.environ,
        "SIGNALROUTE_REPLAY_STREAM_CHUNKS_PER_S": "1000000",
        "SIGNALROUTE_LOG_LEVEL": "warning",
        "SIGNALROUTE_SEED": str(seed),
        **extra,
    }
    if data is not None:
        env["SIGNALROUTE_REPLAY_DATA"] = str(data.resolve())
    return env


@contextmanager
def server_process(
    args: Sequence[str],
    env: dict[str, str],
    log: Path,
    ready_url: str,
    timeout_s: float = 120,
    stop_timeout_s: float = 20,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until ``ready_url`` answers 200, stop it on exit.

    Raises ConfigError when the process exits before it is ready or is not ready within
    ``timeout_s``; its output is in ``log``. On exit it gets SIGTERM and ``stop_timeout_s``
    to finish (a router drains its journal and snapshots its policies), then SIGKILL.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise ConfigError(f"{args[0]} exited early; see {log}")
                try:
                    if httpx.get(ready_url, timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ConfigError(f"{ready_url} did not answer within {timeout_s:g}s")
                time.sleep(0.2)
            yield process
        finally:
            stop(process, stop_timeout_s)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20) -> int | None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; the exit code (None if killed)."""
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
