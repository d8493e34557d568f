"""The benchmark's simulated clock moves only as requests are routed."""

from datetime import UTC, datetime, timedelta

import pytest

from router.tools.routing_bench.clock import START, StreamClock


def test_time_moves_one_step_per_routed_request_on_both_faces() -> None:
    clock = StreamClock(step_s=2.5)
    assert clock.monotonic() == 0.0
    assert clock.now() == START
    for _ in range(4):
        clock.tick()
    assert clock.monotonic() == 10.0
    assert clock.now() == START + timedelta(seconds=10)
    assert clock.now() == clock.now()  # reading it moves nothing


def test_a_clock_needs_an_aware_start_and_a_forward_step() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        StreamClock(start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="step_s"):
        StreamClock(start=datetime(2026, 1, 1, tzinfo=UTC), step_s=0.0)
