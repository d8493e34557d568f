"""Which arms can serve: an open circuit and an unreachable address, each with its reason."""

from __future__ import annotations

from router.health import HealthConfig, HealthTracker
from router.readiness import unavailable_arms


def test_open_circuits_and_unreachable_arms_are_named_with_their_reasons() -> None:
    now = [0.0]
    tracker = HealthTracker(
        ["a", "b", "c"], HealthConfig(open_after_consecutive_failures=3), clock=lambda: now[0]
    )
    for _ in range(3):
        tracker.started("a")
        tracker.failed("a")
    tracker.started("b")
    tracker.succeeded("b", 120.0)
    health = {arm: tracker.snapshot(arm) for arm in ("a", "b", "c")}
    unreachable = {"a": "unreachable: ConnectError", "c": "unreachable: no answer"}
    assert unavailable_arms(["a", "b", "c"], health, unreachable) == {
        "a": "circuit open: 100% of its last 3 calls failed; unreachable: ConnectError",
        "c": "unreachable: no answer",
    }
    now[0] = 31.0  # the cool-down is over: half open, one probe call allowed
    health = {arm: tracker.snapshot(arm) for arm in ("a", "b", "c")}
    assert unavailable_arms(["a", "b", "c"], health, {}) == {}
