"""CPU time of process trees, read from ``/proc`` (Linux): what each part of a benchmark
cost, which a shared machine's wall-clock figures do not show."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

PROC = Path("/proc")


def _ticks_per_s() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def stat_fields(pid: int, proc: Path = PROC) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name: state, parent pid, ...
    (``fields[11:15]`` are utime, stime, cutime and cstime in clock ticks). Raises OSError
    when the process is gone."""
    text = (proc / str(pid) / "stat").read_text()
    return text.rsplit(")", 1)[1].split()


def _own_cpu_s(pid: int) -> float:
    """User plus system time of one process (its threads included), 0 when it is gone."""
    try:
        fields = stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _ticks_per_s()


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def postmaster_pid(pgdata: Path) -> int | None:
    """The Postgres server's pid, from ``postmaster.pid`` in its data directory."""
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds used so far by each of these processes (0 for those gone, or off Linux)."""
    return {pid: _own_cpu_s(pid) for pid in pids}


class CpuMeter:
    """CPU seconds each component used between ``start`` and ``stop``.

    A component is a function giving its current pids (a process tree changes: Postgres
    starts a backend per connection); a process that ends in between loses its share.
    """

    def __init__(self, components: dict[str, Callable[[], list[int]]]) -> None:
        self._components = components
        self._before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._before = {name: cpu_by_pid(pids()) for name, pids in self._components.items()}

    def stop(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for name, pids in self._components.items():
            before = self._before.get(name, {})
            after = cpu_by_pid(pids())
            used[name] = sum(max(0.0, s - before.get(pid, 0.0)) for pid, s in after.items())
        return used
