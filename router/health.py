"""Per-arm health, fed by every provider call: latency, errors, rate limits, load, circuit.

The tracker is the stateful side of ``features.system``: it records outcomes and produces
frozen ``ArmHealth`` snapshots. Time comes from an injected clock (seconds, monotonic).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from features.system import ArmHealth, CircuitState

Clock = Callable[[], float]


@dataclass(frozen=True)
class HealthConfig:
    """Tracker knobs: EWMA weight, windows, and when the circuit opens and for how long."""

    ewma_alpha: float = 0.2
    latency_window: int = 200
    error_window_s: float = 300.0
    open_after_consecutive_failures: int = 5
    open_error_rate: float = 0.5
    open_min_calls: int = 10
    cooldown_s: float = 30.0
    latency_half_life_s: float | None = 60.0
    """Without new calls, the latency EWMA's distance from the arm's median latency halves
    every this many seconds: an arm slow a while ago and avoided since is presumed back to
    its usual speed, rather than judged on stale calls forever (None: no decay)."""


class _ArmState:
    def __init__(self, config: HealthConfig) -> None:
        self.latencies: deque[float] = deque(maxlen=config.latency_window)
        self.ewma_ms: float | None = None
        self.latency_at: float | None = None
        """When the last latency arrived (the EWMA decays from then)."""
        self.p50_ms: float | None = None
        self.outcomes: deque[tuple[float, bool]] = deque()
        self.errors = 0
        """Failures among ``outcomes`` (kept in step, so a snapshot need not count them)."""
        self.p95_ms: float | None = None
        self.p95_stale = False
        """The p95 is recomputed only after a new latency arrived."""
        self.consecutive_failures = 0
        self.headroom: float | None = None
        self.headroom_from_429 = False
        """The headroom is the 0 a 429 left (a success without headers clears it)."""
        self.in_flight = 0
        self.open_until: float | None = None
        self.probing = False


class HealthTracker:
    """Records provider outcomes per arm and answers with ``ArmHealth`` snapshots."""

    def __init__(
        self,
        arms: Iterable[str],
        config: HealthConfig | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._config = config or HealthConfig()
        self._clock = clock
        self._arms = {arm: _ArmState(self._config) for arm in arms}
        self.changes = 0
        """How many calls were recorded (begun or ended): a snapshot taken at one count
        stays true, but for the passing of time, while the count is the same."""

    def _state(self, arm: str) -> _ArmState:
        state = self._arms.get(arm)
        if state is None:
            state = self._arms[arm] = _ArmState(self._config)
        return state

    def _prune(self, state: _ArmState, now: float) -> None:
        horizon = now - self._config.error_window_s
        while state.outcomes and state.outcomes[0][0] < horizon:
            _, ok = state.outcomes.popleft()
            if not ok:
                state.errors -= 1

    def started(self, arm: str) -> None:
        """A call to ``arm`` began (counts toward in-flight; claims the half-open probe)."""
        self.changes += 1
        state = self._state(arm)
        state.in_flight += 1
        if self._circuit(state, self._clock()) is CircuitState.HALF_OPEN:
            state.probing = True

    def succeeded(self, arm: str, latency_ms: float, headroom: float | None = None) -> None:
        """A call finished well; closes a half-open circuit."""
        self.changes += 1
        state = self._state(arm)
        now = self._clock()
        state.in_flight = max(0, state.in_flight - 1)
        state.latencies.append(latency_ms)
        state.p95_stale = True
        alpha = self._config.ewma_alpha
        state.ewma_ms = (
            latency_ms
            if state.ewma_ms is None
            else alpha * latency_ms + (1 - alpha) * state.ewma_ms
        )
        state.latency_at = now
        state.outcomes.append((now, True))
        state.consecutive_failures = 0
        if headroom is not None:
            state.headroom = headroom
        elif state.headroom_from_429:
            state.headroom = None
        state.headroom_from_429 = False
        state.open_until = None
        state.probing = False
        self._prune(state, now)

    def cancelled(self, arm: str, latency_ms: float | None = None) -> None:
        """A call was stopped by us (its content went wrong): the provider itself was fine."""
        self.changes += 1
        state = self._state(arm)
        state.in_flight = max(0, state.in_flight - 1)
        state.probing = False
        if latency_ms is not None:
            state.latencies.append(latency_ms)
            state.p95_stale = True

    def failed(
        self, arm: str, *, retry_after_s: float | None = None, rate_limited: bool = False
    ) -> None:
        """A call failed; may open the circuit (at least ``retry_after_s`` when given). A
        ``rate_limited`` failure (HTTP 429) also leaves the arm no rate-limit headroom until
        a success reports some."""
        self.changes += 1
        state = self._state(arm)
        if rate_limited:
            state.headroom = 0.0
            state.headroom_from_429 = True
        now = self._clock()
        state.in_flight = max(0, state.in_flight - 1)
        state.outcomes.append((now, False))
        state.errors += 1
        state.consecutive_failures += 1
        self._prune(state, now)
        config = self._config
        calls = len(state.outcomes)
        errors = state.errors
        should_open = (
            state.probing
            or state.consecutive_failures >= config.open_after_consecutive_failures
            or (calls >= config.open_min_calls and errors / calls >= config.open_error_rate)
        )
        if retry_after_s is not None:
            state.open_until = max(state.open_until or 0.0, now + retry_after_s)
        if should_open:
            state.open_until = max(state.open_until or 0.0, now + config.cooldown_s)
        state.probing = False

    def _circuit(self, state: _ArmState, now: float) -> CircuitState:
        if state.open_until is None:
            return CircuitState.CLOSED
        if now < state.open_until:
            return CircuitState.OPEN
        return CircuitState.OPEN if state.probing else CircuitState.HALF_OPEN

    def _decayed_ewma(self, state: _ArmState, now: float) -> float | None:
        half_life = self._config.latency_half_life_s
        ewma, median, since = state.ewma_ms, state.p50_ms, state.latency_at
        if ewma is None or median is None or since is None or half_life is None:
            return ewma
        decay: float = 0.5 ** (max(0.0, now - since) / half_life)
        return median + (ewma - median) * decay

    def snapshot(self, arm: str) -> ArmHealth:
        """The arm's health now."""
        state = self._state(arm)
        now = self._clock()
        self._prune(state, now)
        calls = len(state.outcomes)
        if state.p95_stale:
            ordered = sorted(state.latencies)  # once for both
            state.p95_ms = sorted_percentile(ordered, 95.0)
            state.p50_ms = sorted_percentile(ordered, 50.0)
            state.p95_stale = False
        return ArmHealth(
            latency_ewma_ms=self._decayed_ewma(state, now),
            latency_p95_ms=state.p95_ms,
            latency_p50_ms=state.p50_ms,
            error_rate=state.errors / calls if calls else 0.0,
            calls_in_window=calls,
            rate_limit_headroom=state.headroom,
            in_flight=state.in_flight,
            circuit=self._circuit(state, now),
        )


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (not empty), interpolated linearly between the
    two nearest ranks, as numpy's default method computes it.

    Sorting a few hundred floats in Python costs a fraction of what numpy's call overhead
    does at this size, and a snapshot is taken on every request. Raises ValueError for no
    values or ``q`` outside [0, 100].
    """
    return sorted_percentile(sorted(values), q)


def sorted_percentile(ordered: Sequence[float], q: float) -> float:
    """``percentile`` of values already sorted (several percentiles of one sort)."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must lie in [0, 100], got {q}")
    if not ordered:
        raise ValueError("the percentile of no values is undefined")
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
