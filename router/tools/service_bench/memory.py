"""Resident memory of process trees over a run, read from ``/proc`` (Linux): the soak's
evidence that nothing grows without bound.

A sampler thread reads each component's resident set size (the sum over its processes) every
``every_s`` seconds. Postgres's figure counts the shared buffers each backend has touched once
per backend, so it rises while backends warm up; the router's and the replay pool's are
their own heaps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
Clock = Callable[[], float]


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (``VmRSS``), 0 when it is gone or has none."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass(frozen=True)
class RssSample:
    """Megabytes each component held resident ``at_s`` seconds into the run."""

    at_s: float
    mb: Mapping[str, float]


class RssSampler:
    """Samples the components' resident memory every ``every_s`` seconds in a daemon thread,
    from ``start`` until ``stop``; one sample at each end too."""

    def __init__(
        self,
        components: Mapping[str, Callable[[], list[int]]],
        every_s: float,
        *,
        read: Callable[[int], int] = rss_bytes,
        clock: Clock = time.monotonic,
    ) -> None:
        self._components = components
        self._every_s = every_s
        self._read = read
        self._clock = clock
        self._samples: list[RssSample] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0

    def sample(self) -> RssSample:
        """Take one sample now (and keep it)."""
        mb = {
            name: round(sum(self._read(pid) for pid in pids()) / 2**20, 2)
            for name, pids in self._components.items()
        }
        taken = RssSample(round(self._clock() - self._start, 3), mb)
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


def growth(samples: Sequence[RssSample], after_s: float, ends: int = 3) -> dict[str, float]:
    """Each component's growth in percent from the start of the steady state to the end: the
    mean of the first ``ends`` samples taken at or after ``after_s`` against the mean of the
    last ``ends`` (fewer when there are fewer). Empty when no sample is that late."""
    steady = [s for s in samples if s.at_s >= after_s]
    if not steady:
        return {}
    head, tail = steady[:ends], steady[-ends:]
    result: dict[str, float] = {}
    for name in steady[0].mb:
        first = sum(s.mb[name] for s in head) / len(head)
        last = sum(s.mb[name] for s in tail) / len(tail)
        result[name] = round((last - first) / first * 100.0, 2) if first > 0 else 0.0
    return result


def as_json(samples: Sequence[RssSample], every_s: float, after_s: float) -> dict[str, Any]:
    """The report's ``rss`` section: the curve and the growth after warm-up."""
    return {
        "every_s": every_s,
        "after_s": after_s,
        "growth_pct": growth(samples, after_s),
        "samples": [{"at_s": s.at_s, **s.mb} for s in samples],
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
    figure, axis = plt.subplots(figsize=(8, 4.5))
    minutes = [s.at_s / 60.0 for s in samples]
    for name in samples[0].mb:
        axis.plot(minutes, [s.mb[name] for s in samples], label=name, linewidth=1.5)
    axis.axvline(after_s / 60.0, color="grey", linestyle=":", label="end of warm-up")
    axis.set_xlabel("minutes into the load")
    axis.set_ylabel("resident memory (MiB, sum over the processes)")
    axis.set_title("Resident memory under sustained load")
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
