"""CPU time a benchmark used: its own processes, and the embedded Postgres server's.

The benchmark usually runs on a machine shared with other work, where wall time says as much
about the neighbours as about the run; CPU seconds are the fairer figure of what it costs.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from router.tools.service_bench.cpu import postmaster_pid, stat_fields


def own_cpu_seconds() -> float:
    """User and system CPU seconds of this process and of every child process it has
    waited for (the worker pool's processes, once the pool is shut down)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def server_cpu_seconds(pgdata: Path, proc: Path = Path("/proc")) -> float | None:
    """CPU seconds of the Postgres server running on ``pgdata`` so far: its postmaster, the
    backends that ended (the postmaster waited for them) and those still running. None where
    it cannot be read (no ``postmaster.pid``, no Linux ``/proc``)."""
    pid = postmaster_pid(pgdata)
    if pid is None:
        return None
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        fields = stat_fields(pid, proc)
        total = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                child = stat_fields(int(entry.name), proc)
            except (OSError, IndexError):
                continue  # gone meanwhile
            if child[1] == str(pid):
                total += int(child[11]) + int(child[12])
    except (OSError, ValueError, IndexError):
        return None
    return total / ticks
