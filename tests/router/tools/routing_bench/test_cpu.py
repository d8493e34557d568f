"""What a benchmark run cost in CPU: its own processes and the Postgres server's."""

import os
import time
from pathlib import Path

from router.tools.routing_bench.cpu import own_cpu_seconds, server_cpu_seconds


def _stat(pid: int, parent: int, utime: int, stime: int, cutime: int, cstime: int) -> str:
    fields = ["S", str(parent), *["0"] * 9, str(utime), str(stime), str(cutime), str(cstime)]
    return f"{pid} (postgres: a (b) c) " + " ".join([*fields, *["0"] * 30])


def _fake_proc(root: Path, stats: dict[int, str]) -> Path:
    for pid, text in stats.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "stat").write_text(text)
    (root / "self").mkdir()
    return root


def test_server_cpu_counts_the_postmaster_its_ended_and_its_live_backends(
    tmp_path: Path,
) -> None:
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "postmaster.pid").write_text("100\n/data\n")
    proc = _fake_proc(
        tmp_path / "proc",
        {
            100: _stat(100, 1, 10, 20, 300, 40),  # ended backends in cutime/cstime
            101: _stat(101, 100, 5, 5, 0, 0),  # a live backend
            102: _stat(102, 7, 1000, 1000, 0, 0),  # somebody else's process
        },
    )
    ticks = os.sysconf("SC_CLK_TCK")
    assert server_cpu_seconds(pgdata, proc) == (10 + 20 + 300 + 40 + 5 + 5) / ticks


def test_server_cpu_is_none_without_a_running_server(tmp_path: Path) -> None:
    assert server_cpu_seconds(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text("999999999\n")
    assert server_cpu_seconds(tmp_path, tmp_path / "no-proc") is None


def test_this_process_reads_as_a_server_and_its_own_cpu_grows(tmp_path: Path) -> None:
    before = own_cpu_seconds()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert own_cpu_seconds() >= before + 0.04
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n")
    read = server_cpu_seconds(tmp_path)
    if Path("/proc/self/stat").exists():
        assert read is not None
        assert read >= 0.04
    else:
        assert read is None
