"""The seeded fault plan: which requests the replay pool fails, and how.

Each request draws exactly two uniforms from one ``numpy.random.Generator``: one picks the
fault kind (the rates split [0, 1) into consecutive intervals, so kinds are mutually exclusive
and ``none`` takes what is left), one says where in the answer a stall or cut happens. The
sequence of faults therefore depends only on the seed and the number of requests drawn, also
when some requests force their fault with the ``x-replay-fault`` header.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from features.errors import ConfigError
from router.settings import ReplaySettings

FaultKind = Literal["none", "error", "rate_limit", "stall", "cut"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
FAULT_HEADER = "x-replay-fault"


@dataclass(frozen=True, slots=True)
class Fault:
    """What happens to one request.

    ``latency_ms`` is waited before the first byte whatever the kind. ``at_fraction`` in
    [0, 1) places a stall or a cut in the answer: a stream stalls or is cut before chunk
    ``floor(at_fraction * chunks)``.
    """

    kind: FaultKind
    latency_ms: float
    at_fraction: float
    stall_ms: float
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Per-request probabilities of each fault; they must add up to at most 1."""

    error: float = 0.0
    rate_limit: float = 0.0
    stall: float = 0.0
    cut: float = 0.0

    def __post_init__(self) -> None:
        rates = (self.error, self.rate_limit, self.stall, self.cut)
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise ConfigError("replay fault rates must each lie in [0, 1]")
        if sum(rates) > 1.0 + 1e-9:
            raise ConfigError(
                f"replay fault rates add up to {sum(rates):g} > 1: lower "
                "SIGNALROUTE_REPLAY_{ERROR,RATE_LIMIT,STALL,CUT}_RATE"
            )

    @classmethod
    def from_settings(cls, settings: ReplaySettings) -> FaultRates:
        return cls(
            error=settings.error_rate,
            rate_limit=settings.rate_limit_rate,
            stall=settings.stall_rate,
            cut=settings.cut_rate,
        )

    def kind_at(self, uniform: float) -> FaultKind:
        """The kind whose interval holds ``uniform`` (in [0, 1))."""
        intervals: tuple[tuple[FaultKind, float], ...] = (
            ("error", self.error),
            ("rate_limit", self.rate_limit),
            ("stall", self.stall),
            ("cut", self.cut),
        )
        edge = 0.0
        for kind, rate in intervals:
            edge += rate
            if uniform < edge:
                return kind
        return "none"


def parse_fault_header(value: str | None) -> FaultKind | None:
    """The fault an ``x-replay-fault`` header forces; None when absent. ValueError when the
    value is not one of ``FAULT_KINDS``."""
    if value is None:
        return None
    wanted = value.strip().lower()
    for kind in FAULT_KINDS:
        if kind == wanted:
            return kind
    raise ValueError(f"{FAULT_HEADER} must be one of {'|'.join(FAULT_KINDS)}, got {value!r}")


class FaultPlan:
    """Draws one Fault per request from a Generator it owns; safe to share between threads."""

    def __init__(self, settings: ReplaySettings, rng: np.random.Generator) -> None:
        self._rates = FaultRates.from_settings(settings)
        self._latency_ms = settings.latency_ms
        self._stall_ms = settings.stall_ms
        self._retry_after_s = settings.retry_after_s
        self._rng = rng
        self._lock = threading.Lock()

    @property
    def rates(self) -> FaultRates:
        return self._rates

    def draw(self, forced: FaultKind | None = None) -> Fault:
        """The next request's fault; ``forced`` overrides the kind but still consumes a draw."""
        with self._lock:
            kind_uniform, at_fraction = (float(x) for x in self._rng.random(2))
        return Fault(
            kind=forced or self._rates.kind_at(kind_uniform),
            latency_ms=self._latency_ms,
            at_fraction=at_fraction,
            stall_ms=self._stall_ms,
            retry_after_s=self._retry_after_s,
        )
