import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.system import CircuitState
from router.health import HealthConfig, HealthTracker, percentile, sorted_percentile


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_latency_ewma_p95_and_in_flight() -> None:
    clock = FakeClock()
    tracker = HealthTracker(["a"], HealthConfig(ewma_alpha=0.5), clock=clock)
    tracker.started("a")
    assert tracker.snapshot("a").in_flight == 1
    tracker.succeeded("a", 100.0, headroom=0.4)
    tracker.started("a")
    tracker.succeeded("a", 300.0)
    health = tracker.snapshot("a")
    assert health.latency_ewma_ms == pytest.approx(200.0)
    assert health.latency_p95_ms == pytest.approx(290.0)
    assert health.in_flight == 0
    assert health.rate_limit_headroom == 0.4
    assert health.circuit is CircuitState.CLOSED


def test_circuit_opens_after_failures_then_half_opens_and_closes() -> None:
    clock = FakeClock()
    config = HealthConfig(open_after_consecutive_failures=3, cooldown_s=30.0)
    tracker = HealthTracker(["a"], config, clock=clock)
    for _ in range(3):
        tracker.started("a")
        tracker.failed("a")
    assert tracker.snapshot("a").circuit is CircuitState.OPEN
    assert tracker.snapshot("a").error_rate == 1.0
    clock.now += 31
    assert tracker.snapshot("a").circuit is CircuitState.HALF_OPEN
    tracker.started("a")  # the probe
    assert tracker.snapshot("a").circuit is CircuitState.OPEN  # one probe at a time
    tracker.succeeded("a", 50.0)
    assert tracker.snapshot("a").circuit is CircuitState.CLOSED


def test_failed_probe_reopens_and_retry_after_is_respected() -> None:
    clock = FakeClock()
    tracker = HealthTracker(["a"], HealthConfig(cooldown_s=10.0), clock=clock)
    tracker.started("a")
    tracker.failed("a", retry_after_s=60.0)
    assert tracker.snapshot("a").circuit is CircuitState.OPEN
    clock.now += 59
    assert tracker.snapshot("a").circuit is CircuitState.OPEN
    clock.now += 2
    assert tracker.snapshot("a").circuit is CircuitState.HALF_OPEN
    tracker.started("a")
    tracker.failed("a")
    assert tracker.snapshot("a").circuit is CircuitState.OPEN


def test_a_429_leaves_no_headroom_until_a_success_reports_some() -> None:
    clock = FakeClock()
    tracker = HealthTracker(["a", "b"], clock=clock)
    tracker.started("a")
    tracker.succeeded("a", 80.0, headroom=0.6)
    tracker.started("a")
    tracker.failed("a", retry_after_s=2.0, rate_limited=True)
    assert tracker.snapshot("a").rate_limit_headroom == 0.0
    clock.now += 3
    tracker.started("a")
    tracker.succeeded("a", 80.0, headroom=0.3)
    assert tracker.snapshot("a").rate_limit_headroom == 0.3
    # an arm whose provider sends no headers: the 429's zero lasts until its next success
    tracker.started("b")
    tracker.failed("b", retry_after_s=1.0, rate_limited=True)
    assert tracker.snapshot("b").rate_limit_headroom == 0.0
    clock.now += 2
    tracker.started("b")
    tracker.succeeded("b", 80.0)
    assert tracker.snapshot("b").rate_limit_headroom is None
    tracker.started("b")
    tracker.failed("b")  # a 5xx says nothing of rate limits
    assert tracker.snapshot("b").rate_limit_headroom is None


def test_a_stale_latency_ewma_returns_toward_the_median() -> None:
    clock = FakeClock()
    config = HealthConfig(ewma_alpha=1.0, latency_half_life_s=10.0)
    tracker = HealthTracker(["a"], config, clock=clock)
    for latency in (100.0, 100.0, 100.0, 900.0):  # a slow call last: EWMA 900, median 100
        tracker.started("a")
        tracker.succeeded("a", latency)
    assert tracker.snapshot("a").latency_ewma_ms == pytest.approx(900.0)
    clock.now += 10
    assert tracker.snapshot("a").latency_ewma_ms == pytest.approx(500.0)
    clock.now += 10
    assert tracker.snapshot("a").latency_ewma_ms == pytest.approx(300.0)
    tracker.started("a")
    tracker.succeeded("a", 700.0)  # a new call resets the clock of the decay
    assert tracker.snapshot("a").latency_ewma_ms == pytest.approx(700.0)
    frozen = HealthTracker(["a"], HealthConfig(latency_half_life_s=None), clock=clock)
    frozen.started("a")
    frozen.succeeded("a", 900.0)
    clock.now += 1000
    assert frozen.snapshot("a").latency_ewma_ms == pytest.approx(900.0)


def test_error_window_forgets_old_failures() -> None:
    clock = FakeClock()
    tracker = HealthTracker(["a"], HealthConfig(error_window_s=60.0), clock=clock)
    tracker.started("a")
    tracker.failed("a")
    tracker.started("a")
    tracker.succeeded("a", 10.0)
    assert tracker.snapshot("a").error_rate == 0.5
    clock.now += 61
    assert tracker.snapshot("a").error_rate == 0.0


@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.floats(0, 100),
)
def test_percentile_agrees_with_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-6)
    assert sorted_percentile(sorted(values), q) == percentile(values, q)


def test_percentile_refuses_what_numpy_refuses() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile([1.0], 101)
