"""The seeded fault plan: rates, reproducibility, forced faults."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from features.errors import ConfigError
from router.settings import ReplaySettings
from router.tools.replay_pool.faults import (
    FAULT_KINDS,
    FaultKind,
    FaultPlan,
    FaultRates,
    parse_fault_header,
)

RATES = {"error_rate": 0.1, "rate_limit_rate": 0.05, "stall_rate": 0.15, "cut_rate": 0.2}


def plan(seed: int, **rates: float) -> FaultPlan:
    settings = ReplaySettings.model_validate({"seed": seed, **rates})
    return FaultPlan(settings, np.random.default_rng(settings.seed))


def test_same_seed_same_sequence_and_another_seed_another() -> None:
    one, two, other = plan(3, **RATES), plan(3, **RATES), plan(4, **RATES)
    first = [one.draw() for _ in range(200)]
    assert first == [two.draw() for _ in range(200)]
    assert [f.kind for f in first] != [other.draw().kind for _ in range(200)]


def test_drawn_rates_follow_the_settings() -> None:
    faults = plan(11, **RATES)
    counts = Counter(faults.draw().kind for _ in range(20_000))
    expected: dict[FaultKind, float] = {
        "error": 0.1,
        "rate_limit": 0.05,
        "stall": 0.15,
        "cut": 0.2,
        "none": 0.5,
    }
    for kind, rate in expected.items():
        assert counts[kind] / 20_000 == pytest.approx(rate, abs=0.015)


def test_no_rates_no_faults() -> None:
    faults = plan(0)
    assert {faults.draw().kind for _ in range(1000)} == {"none"}


def test_forcing_a_fault_keeps_the_sequence_aligned() -> None:
    free, forced = plan(5, **RATES), plan(5, **RATES)
    expected = [free.draw() for _ in range(10)]
    got = [forced.draw("cut" if i == 3 else None) for i in range(10)]
    assert got[3].kind == "cut"
    assert got[3].at_fraction == expected[3].at_fraction
    assert got[:3] + got[4:] == expected[:3] + expected[4:]


def test_fault_carries_the_settings() -> None:
    settings = ReplaySettings(latency_ms=12.0, stall_ms=34.0, retry_after_s=5.0)
    fault = FaultPlan(settings, np.random.default_rng(0)).draw("stall")
    assert (fault.latency_ms, fault.stall_ms, fault.retry_after_s) == (12.0, 34.0, 5.0)
    assert 0.0 <= fault.at_fraction < 1.0


def test_intervals() -> None:
    rates = FaultRates(error=0.1, rate_limit=0.1, stall=0.1, cut=0.1)
    assert [rates.kind_at(u) for u in (0.0, 0.15, 0.25, 0.35, 0.45, 0.99)] == [
        "error",
        "rate_limit",
        "stall",
        "cut",
        "none",
        "none",
    ]


def test_rates_adding_up_past_one_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"add up to 1\.2"):
        plan(0, error_rate=0.6, cut_rate=0.6)


def test_fault_header() -> None:
    assert parse_fault_header(None) is None
    assert [parse_fault_header(kind) for kind in FAULT_KINDS] == list(FAULT_KINDS)
    assert parse_fault_header(" Rate_Limit ") == "rate_limit"
    with pytest.raises(ValueError, match=r"error\|rate_limit\|stall\|cut"):
        parse_fault_header("explode")
