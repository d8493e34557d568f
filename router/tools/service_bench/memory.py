"""Resident memory of process trees over a run, read from ``/proc`` (Linux): the soak's
evidence that nothing grows without bound.

A sampler thread reads each component's resident set size (the sum over its processes) every
``every_s`` seconds, twice: all of it (``VmRSS``), and without shared memory (``VmRSS`` minus
``RssShmem``). Postgres's full figure counts the shared buffers each backend has touched, once
per backend, so it rises as backends touch more of the cache; without shared memory it is the
backends' own memory, the figure a leak would show in.

Each sample also keeps every process's own figure without shared memory, so that growth can
be told per process: a component's sum also moves when it gains or loses a process (a
connection pool opening one more backend), which is not growth of any process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROC = Path("/proc")
Clock = Callable[[], float]


def _status_kb(pid: int) -> dict[str, int]:
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return {}
    found = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssShmem"):
            found[name] = int(value.split()[0])
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (``VmRSS``), 0 when it is gone or has none."""
    return _status_kb(pid).get("VmRSS", 0) * 1024


def private_rss_bytes(pid: int) -> int:
    """Resident memory of one process without shared memory (``VmRSS - RssShmem``)."""
    kb = _status_kb(pid)
    return max(0, kb.get("VmRSS", 0) - kb.get("RssShmem", 0)) * 1024


@dataclass(frozen=True)
class RssSample:
    """Megabytes each component held resident ``at_s`` seconds into the run (``mb``), and
    without shared memory (``private_mb``); ``by_pid``: each component's processes, their own
    megabytes without shared memory."""

    at_s: float
    mb: Mapping[str, float]
    private_mb: Mapping[str, float] = field(default_factory=dict)
    by_pid: Mapping[str, Mapping[int, float]] = field(default_factory=dict)


class RssSampler:
    """Samples the components' resident memory every ``every_s`` seconds in a daemon thread,
    from ``start`` until ``stop``; one sample at each end too."""

    def __init__(
        self,
        components: Mapping[str, Callable[[], list[int]]],
        every_s: float,
        *,
        read: Callable[[int], int] = rss_bytes,
        read_private: Callable[[int], int] = private_rss_bytes,
        clock: Clock = time.monotonic,
    ) -> None:
        self._components = components
        self._every_s = every_s
        self._read = read
        self._read_private = read_private
        self._clock = clock
        self._samples: list[RssSample] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0

    def sample(self) -> RssSample:
        """Take one sample now (and keep it)."""
        mb, private_mb, by_pid = {}, {}, {}
        for name, pids in self._components.items():
            now = pids()
            mb[name] = round(sum(self._read(pid) for pid in now) / 2**20, 2)
            own = {pid: self._read_private(pid) / 2**20 for pid in now}
            by_pid[name] = {pid: round(value, 2) for pid, value in own.items() if value > 0}
            private_mb[name] = round(sum(own.values()), 2)
        taken = RssSample(round(self._clock() - self._start, 3), mb, private_mb, by_pid)
        self._samples.append(taken)
        return taken

    def start(self) -> None:
        self._start = self._clock()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._every_s):
            self.sample()

    def stop(self) -> list[RssSample]:
        """Stop sampling; every sample taken, the last one now."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return list(self._samples)


def growth(
    samples: Sequence[RssSample], after_s: float, window_s: float = 60.0, *, private: bool = False
) -> dict[str, float]:
    """Each component's growth in percent over the steady state: the median of its samples
    in the first ``window_s`` seconds from ``after_s`` against the median of those in the last
    ``window_s`` seconds (at least one sample each). Medians, because a process that lives a
    few seconds (an autovacuum worker) would otherwise count as growth. Empty when no sample
    is that late. With ``private``, of the figures without shared memory."""
    head, tail = _windows(samples, after_s, window_s)
    if not head:
        return {}

    def figure(sample: RssSample, name: str) -> float:
        return (sample.private_mb if private and sample.private_mb else sample.mb)[name]

    result: dict[str, float] = {}
    for name in head[0].mb:
        first = float(np.median([figure(s, name) for s in head]))
        last = float(np.median([figure(s, name) for s in tail]))
        result[name] = round((last - first) / first * 100.0, 2) if first > 0 else 0.0
    return result


def _windows(
    samples: Sequence[RssSample], after_s: float, window_s: float
) -> tuple[list[RssSample], list[RssSample]]:
    """The samples of the first and of the last ``window_s`` seconds from ``after_s``."""
    steady = [s for s in samples if s.at_s >= after_s]
    if not steady:
        return [], []
    head = [s for s in steady if s.at_s < steady[0].at_s + window_s] or steady[:1]
    tail = [s for s in steady if s.at_s > steady[-1].at_s - window_s] or steady[-1:]
    return head, tail


def process_growth(
    samples: Sequence[RssSample], after_s: float, window_s: float = 60.0
) -> dict[str, dict[str, float]]:
    """Per component, growth told process by process (without shared memory): ``largest_pct``,
    the largest growth of one process alive in both the first and the last ``window_s``
    seconds from ``after_s`` (the median of its samples in each; ``largest_from_mb`` and
    ``largest_to_mb``: that process's megabytes then and at the end), ``processes_first`` /
    ``processes_last``, how many processes the component had at the middle of each window,
    and ``processes_through``, how many were alive in both (0: ``largest_pct`` is 0). Empty
    when no sample after ``after_s`` records processes."""
    head, tail = _windows(samples, after_s, window_s)
    if not head or not any(s.by_pid for s in head):
        return {}
    result: dict[str, dict[str, float]] = {}
    for name in head[0].by_pid:
        first_pids = {pid for s in head for pid in s.by_pid.get(name, {})}
        last_pids = {pid for s in tail for pid in s.by_pid.get(name, {})}
        through = first_pids & last_pids
        largest, largest_from, largest_to = (-100.0 if through else 0.0), 0.0, 0.0
        for pid in through:
            first = float(np.median([s.by_pid[name][pid] for s in head if pid in s.by_pid[name]]))
            last = float(np.median([s.by_pid[name][pid] for s in tail if pid in s.by_pid[name]]))
            if first > 0 and (last - first) / first * 100.0 > largest:
                largest, largest_from, largest_to = (last - first) / first * 100.0, first, last
        result[name] = {
            "largest_pct": round(largest, 2),
            "largest_from_mb": round(largest_from, 2),
            "largest_to_mb": round(largest_to, 2),
            "processes_through": len(through),
            "processes_first": len(head[len(head) // 2].by_pid.get(name, {})),
            "processes_last": len(tail[len(tail) // 2].by_pid.get(name, {})),
        }
    return result


def as_json(samples: Sequence[RssSample], every_s: float, after_s: float) -> dict[str, Any]:
    """The report's ``rss`` section: the curve and the growth after warm-up."""
    return {
        "every_s": every_s,
        "after_s": after_s,
        "growth_pct": growth(samples, after_s),
        "growth_without_shared_memory_pct": growth(samples, after_s, private=True),
        "growth_per_process": process_growth(samples, after_s),
        "samples": [{"at_s": s.at_s, **s.mb} for s in samples],
        "samples_without_shared_memory": [
            {"at_s": s.at_s, **s.private_mb} for s in samples if s.private_mb
        ],
    }


def plot(samples: Sequence[RssSample], after_s: float, path: Path) -> bool:
    """The RSS curves as a PNG at ``path``; False (nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not samples:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    minutes = [s.at_s / 60.0 for s in samples]
    for axis, private in zip(axes, (False, True), strict=True):
        title = "without shared memory" if private else "all resident memory"
        for name in samples[0].mb:
            figures = [(s.private_mb or s.mb)[name] if private else s.mb[name] for s in samples]
            axis.plot(minutes, figures, label=name, linewidth=1.5)
        axis.axvline(after_s / 60.0, color="grey", linestyle=":", label="end of warm-up")
        axis.set_xlabel("minutes into the load")
        axis.set_ylabel("MiB, sum over the processes")
        axis.set_title(f"Resident memory: {title}")
        axis.grid(alpha=0.3)
        axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
