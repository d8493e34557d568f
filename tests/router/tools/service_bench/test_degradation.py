"""``bench-degradation``: its timeline and summaries; a short real run (a service over HTTP, the
replay pool with latency profiles and degradation episodes, real Postgres, real VW) whose
policy must move traffic away from a degrading arm before its breaker opens; and the seeded
simulation of the same traffic whose learned policy must give every system signal the right
sign.

The real run is too short (a few hundred requests on a shared machine) to hold the signs to:
a policy's weights on signals that vary for seconds at a time are noisy at that size. The
simulation runs the same parts (episodes, health tracker, features, reward, VW) for 3,000
requests in seconds, seeded, so its signs are a fixed fact a change can break."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from learner.signal_effects import SignalEffect
from router.settings import Settings
from router.tools.replay_pool.conditions import conditions_at
from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.service_bench.degradation import (
    PROFILES,
    Observation,
    Report,
    Scenario,
    favourite,
    run_scenario,
    summarize,
    windows_of,
)
from router.tools.service_bench.degradation_cli import markdown, plot
from router.tools.service_bench.signal_learning import simulate
from store.embedded import EmbeddedPostgres


def test_the_timeline_scales_and_the_story_follows_it() -> None:
    scenario = Scenario(time_scale=0.5)
    phases = scenario.phases()
    assert [name for name, _, _ in phases] == ["warm-up", "slow", "errors", "outage", "recovery"]
    assert phases[1][1] == 90.0
    assert scenario.duration_s == 225.0
    story = scenario.degradation("claude-instant-v1")
    assert conditions_at(story, "claude-instant-v1", 89.0).latency_factor == 1.0
    assert conditions_at(story, "claude-instant-v1", 100.0).latency_factor == 6.0
    assert conditions_at(story, "claude-instant-v1", 130.0).error_rate == 0.35
    assert conditions_at(story, "claude-instant-v1", 150.0).error_rate == 0.95
    assert conditions_at(story, "claude-instant-v1", 160.0).error_rate == 0.0
    warmup = scenario.warmup_episodes()
    assert {e.model for e in warmup} == set(PROFILES)
    assert max(e.start_s + e.duration_s for e in warmup) <= phases[0][2]
    assert all(e.every_s == 90.0 for e in scenario.warmup_episodes(repeat=True))


def seen(at_s: float, p: float, *, open_: bool = False) -> Observation:
    arms = frozenset({"a"}) if open_ else frozenset()
    return Observation(at_s, {"a": p, "b": 1 - p}, "a" if p > 0.5 else "b", arms, {}, 0)


def test_windows_and_when_traffic_moved() -> None:
    scenario = Scenario(time_scale=0.1)  # windows of 1.5 s; degradation from 18 s
    observations = [seen(t, 0.9) for t in (13.6, 15.1, 16.6)]
    observations += [seen(18.1, 0.8), seen(19.6, 0.3), seen(28.6, 0.0, open_=True)]
    observations += [seen(t, 0.6) for t in (40.6, 42.1, 43.6)]
    windows = windows_of(observations, scenario, "a")
    phases = ["warm-up"] * 3 + ["slow"] * 2 + ["outage"] + ["recovery"] * 3
    assert [w.phase for w in windows] == phases
    assert windows[4].probability == 0.3
    assert windows[5].circuit_open_share == 1.0
    moved, breaker, before, outage, recovered = summarize(windows, scenario)
    assert (moved, breaker) == (19.5, 28.5)
    assert before == pytest.approx(0.9)
    assert outage == 0.0
    assert recovered == pytest.approx(0.6)


def test_the_favourite_is_the_arm_with_the_most_probability_lately() -> None:
    arms = list(PROFILES)
    early = Observation(1.0, {arms[0]: 1.0}, arms[0], frozenset(), {}, 0)
    late = [Observation(9.0, {arms[1]: 0.7, arms[2]: 0.3}, arms[1], frozenset(), {}, 0)]
    assert favourite([early, *late], 5.0) == arms[1]
    assert favourite([early, *late], 0.0) == arms[0]


@pytest.fixture(scope="module")
def short_run(embedded_postgres: EmbeddedPostgres, replay_dataset: ReplayDataset) -> Report:
    """About 45 seconds of traffic at a tenth of the bench's time scale; the pre-generation
    policy decides alone (no anchor), so what moves traffic is what it learned."""
    url = embedded_postgres.create_database("degradation_bench", durable=False)
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        settings = Settings(database_url=url, data_dir=workdir / "data", anchor=False)
        scenario = Scenario(time_scale=0.1, concurrency=4)
        return run_scenario(scenario, replay_dataset, settings, workdir)


def test_traffic_leaves_the_degrading_arm_before_its_breaker_opens(short_run: Report) -> None:
    print(markdown(short_run))
    assert short_run.requests > 150
    assert short_run.share_before > 0.25, "the degraded arm was the warm-up's favourite"
    assert short_run.moved_at_s is not None
    assert short_run.moved_before_breaker
    assert short_run.share_outage < short_run.share_before / 2

    effects = {e.signal for e in short_run.effects}  # measured and reported, not held
    assert effects == {"latency_ms", "error_rate", "low_headroom", "budget_used"}


def test_each_system_signal_moves_the_learned_policy_the_right_way(
    replay_dataset: ReplayDataset,
) -> None:
    simulated = simulate(Scenario(time_scale=1.0, seed=0), replay_dataset, requests=3000)
    assert simulated.failures > 0, "the episodes failed some calls"
    effects = {e.signal: e for e in simulated.effects}
    assert set(effects) == {"latency_ms", "error_rate", "low_headroom", "budget_used"}
    wrong = [e.row() for e in effects.values() if not e.right]
    assert not wrong, wrong


def test_the_report_reads_as_markdown_and_plots(tmp_path: Path) -> None:
    scenario = Scenario(time_scale=0.1)
    observations = [seen(t, 0.9) for t in (13.6, 15.1, 16.6)] + [seen(19.6, 0.1)]
    windows = windows_of(observations, scenario, "a")
    moved, breaker, before, outage, recovered = summarize(windows, scenario)
    report = Report(
        scenario=scenario,
        degraded="a",
        anchored=True,
        windows=windows,
        effects=[SignalEffect("latency_ms", 30.0, 300.0, -0.05, "mean change", 4)],
        moved_at_s=moved,
        breaker_at_s=breaker,
        share_before=before,
        share_outage=outage,
        share_recovered=recovered,
        requests=len(observations),
    )
    text = markdown(report)
    assert "moved before the breaker: True" in text
    assert "| latency_ms | 30 -> 300 | -0.0500 | yes |" in text
    assert report.as_json()["moved_before_breaker"] is True
    pytest.importorskip("matplotlib")
    assert plot(report, tmp_path / "degradation.png")
    assert (tmp_path / "degradation.png").stat().st_size > 1000
