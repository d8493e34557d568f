"""The benchmark's clock: simulated time that advances as the stream is routed, not as fast
as the machine routes it.

The router reads time in two places that feed its decisions: the health tracker's windows
(errors over the last minutes, the latency average's half-life) and the age of a historical
neighbour. On the wall clock both depend on how fast a run goes, so two runs of one seed
could see slightly different signals and, once learning is on, draw differently.
``StreamClock`` starts at a fixed instant and moves only when told (``tick``: one request
routed), so a run is the same whatever the machine's speed or load.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2026, 1, 1, tzinfo=UTC)
"""Where every run's simulated time begins."""
SECONDS_PER_REQUEST = 1.0
"""How far a routed request moves the clock: the stream arrives at one request a second."""


class StreamClock:
    """Simulated time: ``monotonic`` seconds for the health tracker, ``now`` for the
    router's wall clock, both advanced by ``tick``."""

    def __init__(self, *, start: datetime = START, step_s: float = SECONDS_PER_REQUEST) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if step_s <= 0:
            raise ValueError("step_s must be positive")
        self._start = start
        self._step_s = step_s
        self._seconds = 0.0

    def tick(self) -> None:
        """One request was routed."""
        self._seconds += self._step_s

    def monotonic(self) -> float:
        return self._seconds

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._seconds)
