"""Resident-memory sampling: the figures, the growth after warm-up and the plot."""

from __future__ import annotations

import os
import time
from pathlib import Path

from router.tools.service_bench import memory
from router.tools.service_bench.memory import RssSample, RssSampler


class SteppingClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_this_process_has_resident_memory_and_a_gone_one_has_none() -> None:
    assert memory.rss_bytes(os.getpid()) > 10 * 2**20
    assert memory.rss_bytes(2**22 + 12345) == 0


def test_a_sample_sums_each_component_s_processes_in_mib() -> None:
    sizes = {1: 2**20, 2: 3 * 2**20, 3: 2**19}
    clock = SteppingClock()
    sampler = RssSampler(
        {"router": lambda: [1, 2], "postgres": lambda: [3]},
        every_s=3600,
        read=lambda pid: sizes.get(pid, 0),
        read_private=lambda pid: sizes.get(pid, 0) // 2,
        clock=clock,
    )
    sampler.start()
    clock.now = 112.5
    sizes[1] = 2 * 2**20
    samples = sampler.stop()
    assert [(s.at_s, s.mb) for s in samples] == [
        (0.0, {"router": 4.0, "postgres": 0.5}),
        (12.5, {"router": 5.0, "postgres": 0.5}),
    ]


def test_shared_memory_is_left_out_of_the_private_figure() -> None:
    assert 0 < memory.private_rss_bytes(os.getpid()) <= memory.rss_bytes(os.getpid())
    assert memory.private_rss_bytes(2**22 + 12345) == 0


def test_the_sampler_thread_samples_every_interval() -> None:
    sampler = RssSampler({"me": lambda: [os.getpid()]}, every_s=0.02)
    sampler.start()
    time.sleep(0.3)
    samples = sampler.stop()
    assert len(samples) >= 5
    assert all(s.mb["me"] > 10 for s in samples)
    assert [s.at_s for s in samples] == sorted(s.at_s for s in samples)


def test_growth_compares_the_first_steady_minute_with_the_last() -> None:
    samples = [
        RssSample(float(t), {"a": 50.0 if t < 30 else 100.0 + t / 10}) for t in range(0, 200, 10)
    ]
    # steady from 30 s: the first minute (30..80 s) 103..108 (median 105.5), the last minute
    # (after 190 - 60 = 130 s: 140..190 s): 114..119 (median 116.5)
    assert memory.growth(samples, after_s=30) == {"a": round(11 / 105.5 * 100, 2)}
    assert memory.growth(samples, after_s=500) == {}


def test_a_process_that_lives_a_few_seconds_is_not_growth() -> None:
    steady = [RssSample(float(t), {"postgres": 180.0}) for t in range(0, 600, 10)]
    steady[-2] = RssSample(580.0, {"postgres": 260.0})  # an autovacuum worker, then gone
    steady[-1] = RssSample(590.0, {"postgres": 210.0})
    assert memory.growth(steady, after_s=0) == {"postgres": 0.0}


def test_the_report_section_and_the_plot(tmp_path: Path) -> None:
    samples = [
        RssSample(
            float(t), {"router": 200.0, "postgres": 80.0}, {"router": 150.0, "postgres": t + 10}
        )
        for t in (0, 10, 20, 30)
    ]
    section = memory.as_json(samples, every_s=10, after_s=0)
    assert section["growth_pct"] == {"router": 0.0, "postgres": 0.0}
    # one-minute windows: all four samples in each; with 10 s windows, 10 MiB against 40 MiB
    assert section["growth_without_shared_memory_pct"] == {"router": 0.0, "postgres": 0.0}
    assert memory.growth(samples, 0, window_s=5, private=True) == {"router": 0.0, "postgres": 300.0}
    assert section["samples"][1] == {"at_s": 10.0, "router": 200.0, "postgres": 80.0}
    assert memory.plot(samples, 10, tmp_path / "rss.png")
    assert (tmp_path / "rss.png").read_bytes()[:4] == b"\x89PNG"


def test_growth_per_process_separates_a_new_process_from_growth() -> None:
    """A component that gains a process grows as a sum but not per process; a process that
    grows shows as growth whatever else the component does."""

    def sample(t: int) -> RssSample:
        backends = {1: 100.0, 2: 100.0 + (t / 10 if t >= 300 else 0.0)}
        if t >= 300:
            backends[3] = 50.0  # one more connection, opened half-way
        router = {7: 400.0}
        return RssSample(
            float(t),
            {"postgres": sum(backends.values()), "router": 400.0},
            {"postgres": sum(backends.values()), "router": 400.0},
            {"postgres": backends, "router": router},
        )

    samples = [sample(t) for t in range(0, 600, 10)]
    figures = memory.process_growth(samples, after_s=0, window_s=60)
    assert figures["router"] == {
        "largest_pct": 0.0,
        "largest_from_mb": 400.0,
        "largest_to_mb": 400.0,
        "processes_through": 1,
        "processes_first": 1,
        "processes_last": 1,
    }
    # process 2 grew from 100 to the median of 154..159 (156.5); process 3 is not counted
    assert figures["postgres"]["largest_pct"] == 56.5
    assert (figures["postgres"]["largest_from_mb"], figures["postgres"]["largest_to_mb"]) == (
        100.0,
        156.5,
    )
    assert figures["postgres"]["processes_through"] == 2
    assert (figures["postgres"]["processes_first"], figures["postgres"]["processes_last"]) == (2, 3)
    assert memory.process_growth(samples, after_s=10_000) == {}
    assert "growth_per_process" in memory.as_json(samples, every_s=10, after_s=0)


def test_sampler_keeps_each_process_figure() -> None:
    sizes = {11: 3 * 2**20, 12: 5 * 2**20}
    sampler = RssSampler(
        {"pool": lambda: [11, 12]},
        every_s=60,
        read=lambda pid: sizes[pid] * 2,
        read_private=lambda pid: sizes[pid],
    )
    taken = sampler.sample()
    assert taken.by_pid == {"pool": {11: 3.0, 12: 5.0}}
    assert taken.private_mb == {"pool": 8.0}
    assert taken.mb == {"pool": 16.0}
