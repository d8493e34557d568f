"""``signalroute bench-degradation``: one arm degrades mid-run; does traffic leave it before its
circuit breaker opens, and does each system signal move the learned policy the right way?

A service runs in this process (the replay pool mounted in it, a real Postgres) over four
replayed models with latency profiles. Clients send RouterBench training prompts to
``/route-and-run`` (pre-generation only), several at a time, in sessions with a budget, and
report each answer's recorded correctness as a label reward priced like the request's
objective: ``lambda_cost`` grows from 0.1 to 1.0 as the session's budget runs down (so the
budget is worth learning, as in notebook 02), and latency is priced (``lambda_latency``
against a latency budget ``latency_ref_ms``).

The timeline (every duration and latency times ``time_scale``): a **warm-up** in which every
arm goes through short slow spells, error bursts and rate limits in turn (the variation the
policy learns system signals from); then the **degraded** arm (the warm-up's favourite: the
most probability at its end) **slows down**, then also **fails** a share of its calls, then
has an **outage** (nearly every call fails: the breaker opens, unless the traffic has left
already), then **recovers**. ``--anchor`` runs the pre-generation stage anchored to its rule
(the service's default), the policy alone, or both.

Per time window: the degraded arm's mean probability in the pre-generation PMF (0 when
masked), the share of requests that drew it, the share of requests that found its circuit
open, and its mean latency. Then the learned policy (the store's snapshot) is re-scored on
the logged contexts with each system signal changed (``learner.signal_effects``).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import yaml

from learner.reward import RewardWeights, shape_reward
from learner.signal_effects import SignalEffect, system_signal_effects
from router import explain
from router.app import create_app
from router.background import serve_in_background
from router.pool import SELF_PLACEHOLDER, demo_pool
from router.settings import DegradationEpisode, LatencyProfile, Settings
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.conditions import SystemPlan
from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord

PROFILES: Mapping[str, tuple[float, float]] = {
    "gpt-4-1106-preview": (500.0, 60.0),
    "gpt-3.5-turbo-1106": (350.0, 100.0),
    "claude-instant-v1": (400.0, 90.0),
    "mistralai/mixtral-8x7b-chat": (300.0, 80.0),
}
"""The arms and their latency profiles at time scale 1: median time to first token (ms) and
tokens per second, of the order hosted APIs show."""
STAGES: Mapping[str, object] = MappingProxyType(
    {"escalation": False, "components": False, "judge": "never"}
)
COST_REF_USD = 0.01


@dataclass(frozen=True)
class Scenario:
    """The run's timeline and objective; seconds and milliseconds at ``time_scale`` 1."""

    time_scale: float = 0.5
    warmup_s: float = 180.0
    slow_s: float = 60.0
    errors_s: float = 45.0
    outage_s: float = 30.0
    recovery_s: float = 135.0
    window_s: float = 15.0
    slow_factor: float = 6.0
    error_rate: float = 0.35
    outage_rate: float = 0.95
    lambda_latency: float = 0.3
    latency_ref_ms: float = 2000.0
    session_budget_usd: float = 0.05
    health_window_s: float = 10.0
    labels: bool = True
    """Report each answer's recorded correctness as a label reward (else the router's own
    reward stands alone: every answer passes, so rewards differ by cost, latency and
    failures only)."""
    latency_half_life_s: float = 10.0
    concurrency: int = 6
    seed: int = 0

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def phases(self) -> list[tuple[str, float, float]]:
        """``(name, start_s, end_s)`` of each phase, scaled."""
        names = ("warm-up", "slow", "errors", "outage", "recovery")
        lengths = (self.warmup_s, self.slow_s, self.errors_s, self.outage_s, self.recovery_s)
        phases, start = [], 0.0
        for name, length in zip(names, lengths, strict=True):
            phases.append((name, self.scaled(start), self.scaled(start + length)))
            start += length
        return phases

    @property
    def duration_s(self) -> float:
        return self.phases()[-1][2]

    def profiles(self) -> dict[str, LatencyProfile]:
        return {
            arm: LatencyProfile(
                ttft_ms=ttft_ms * self.time_scale,
                tokens_per_s=tokens_per_s / self.time_scale,
                requests_per_min=1200,
            )
            for arm, (ttft_ms, tokens_per_s) in PROFILES.items()
        }

    def warmup_episodes(self, *, repeat: bool = False) -> list[DegradationEpisode]:
        """Each arm's short spells in the warm-up, in turn: a slow spell, an error burst and a
        rate limit (the variation the policy learns the system signals from); ``repeat``
        starts the cycle again every warm-up length."""
        spells: list[DegradationEpisode] = []
        turn = self.warmup_s / (len(PROFILES) + 1)
        for index, arm in enumerate(PROFILES):
            start = turn * (index + 0.5)
            for kind, offset, length, extra in (
                ("slow", 0.0, 0.5, {"factor": 4.0}),
                ("errors", 0.25, 0.5, {"rate": 0.5}),
                ("rate_limit", 0.6, 0.3, {"rate": 0.3}),
            ):
                spells.append(
                    DegradationEpisode.model_validate(
                        {
                            "model": arm,
                            "kind": kind,
                            "start_s": self.scaled(start + offset * turn),
                            "duration_s": self.scaled(length * turn),
                            "every_s": self.scaled(self.warmup_s) if repeat else None,
                            **extra,
                        }
                    )
                )
        return spells

    def degradation(self, degraded: str) -> list[DegradationEpisode]:
        """The degraded arm's story: slow from the end of the warm-up to the end of the
        outage, failing ``error_rate`` of its calls, then ``outage_rate`` in the outage."""
        _, slow_start, _ = self.phases()[1]
        _, errors_start, _ = self.phases()[2]
        _, outage_start, outage_end = self.phases()[3]
        return [
            DegradationEpisode(
                model=degraded,
                kind="slow",
                start_s=slow_start,
                duration_s=outage_end - slow_start,
                factor=self.slow_factor,
            ),
            DegradationEpisode(
                model=degraded,
                kind="errors",
                start_s=errors_start,
                duration_s=outage_start - errors_start,
                rate=self.error_rate,
            ),
            DegradationEpisode(
                model=degraded,
                kind="errors",
                start_s=outage_start,
                duration_s=outage_end - outage_start,
                rate=self.outage_rate,
            ),
        ]

    def weights(self, lambda_cost: float) -> RewardWeights:
        return RewardWeights(
            lambda_cost=lambda_cost,
            lambda_latency=self.lambda_latency,
            cost_ref_usd=COST_REF_USD,
            latency_ref_ms=self.latency_ref_ms * self.time_scale,
        )

    def lambda_cost(self, spent_usd: float) -> float:
        """The client's cost weight: 0.1 with nothing spent, 1.0 with the budget used up."""
        return 0.1 + 0.9 * min(1.0, spent_usd / self.session_budget_usd)


@dataclass(frozen=True)
class Observation:
    """One request: when it was sent, and its first pre-generation decision: the PMF it was
    drawn from, the arm drawn, the arms whose circuit was open; the latency of each arm's
    finished run."""

    at_s: float
    pmf: Mapping[str, float]
    drawn: str | None
    circuit_open: frozenset[str]
    latency_ms: Mapping[str, float]
    failed_runs: int


class Stopwatch:
    """Seconds since ``start()`` (0 before): the replay pool's clock, so the scenario's
    times count from the first request, not from the service's start-up."""

    def __init__(self) -> None:
        self._started: float | None = None

    def start(self) -> None:
        self._started = time.monotonic()

    def __call__(self) -> float:
        return 0.0 if self._started is None else time.monotonic() - self._started


@dataclass(frozen=True)
class Window:
    start_s: float
    phase: str
    requests: int
    probability: float
    drawn_share: float
    circuit_open_share: float
    latency_ms: float | None
    failed_runs: int

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    scenario: Scenario
    degraded: str
    anchored: bool
    windows: list[Window]
    effects: list[SignalEffect]
    moved_at_s: float | None
    breaker_at_s: float | None
    share_before: float
    share_outage: float
    share_recovered: float
    requests: int
    load_average: tuple[float, ...] = field(default_factory=tuple)

    @property
    def moved_before_breaker(self) -> bool:
        """Traffic left the degraded arm (its probability fell below half its warm-up
        share) while its circuit was still closed."""
        if self.moved_at_s is None:
            return False
        return self.breaker_at_s is None or self.moved_at_s < self.breaker_at_s

    @property
    def recovered(self) -> bool:
        return self.share_recovered > self.share_outage

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": asdict(self.scenario),
            "degraded": self.degraded,
            "anchored": self.anchored,
            "requests": self.requests,
            "moved_at_s": self.moved_at_s,
            "breaker_at_s": self.breaker_at_s,
            "moved_before_breaker": self.moved_before_breaker,
            "share_before": self.share_before,
            "share_outage": self.share_outage,
            "share_recovered": self.share_recovered,
            "recovered": self.recovered,
            "signal_effects": [e.row() for e in self.effects],
            "windows": [w.row() for w in self.windows],
            "load_average": list(self.load_average),
        }


def pool_document() -> dict[str, Any]:
    """A pool file of the four arms, served by the replay pool mounted in the router."""
    arms = {arm.name: arm for arm in demo_pool().arms}
    return {
        "arms": [
            arms[name].model_dump(mode="json", exclude_defaults=True)
            | {"base_url": f"{SELF_PLACEHOLDER}/replay/v1"}
            for name in PROFILES
        ],
        "escalation_targets": [],
    }


def observe(result: Mapping[str, Any], at_s: float) -> Observation:
    decisions = [d for d in result.get("trace", {}).get("decisions", []) if d["stage"] == "pre"]
    failed = sum(1 for d in decisions if str(d.get("outcome", "")).startswith("error"))
    if not decisions:
        return Observation(at_s, {}, None, frozenset(), {}, failed)
    first = decisions[0]
    latency = {
        d["arm"]: float(d["latency_ms"])
        for d in decisions
        if d.get("latency_ms") is not None and not str(d.get("outcome", "")).startswith("error")
    }
    return Observation(
        at_s=at_s,
        pmf={arm: float(p) for arm, p in first["pmf"].items()},
        drawn=first["arm"],
        circuit_open=frozenset(a for a, why in first["masked"].items() if why == "circuit open"),
        latency_ms=latency,
        failed_runs=failed,
    )


def favourite(observations: Sequence[Observation], since_s: float) -> str:
    """The arm with the largest mean probability in the observations since ``since_s``."""
    recent = [o for o in observations if o.at_s >= since_s] or list(observations)
    totals = {arm: sum(o.pmf.get(arm, 0.0) for o in recent) for arm in PROFILES}
    return max(PROFILES, key=lambda arm: totals[arm])


async def _client(
    client: httpx.AsyncClient,
    worker: int,
    prompts: list[ReplayRecord],
    scenario: Scenario,
    clock: Stopwatch,
    observations: list[Observation],
) -> None:
    session, spent, index = 0, 0.0, worker
    while clock() < scenario.duration_s:
        record = prompts[index % len(prompts)]
        index += scenario.concurrency
        lam = scenario.lambda_cost(spent)
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": record.prompt}],
            "session": f"w{worker}-s{session}",
            "objective": {"lambda_cost": lam, "lambda_latency": scenario.lambda_latency},
            "stages": dict(STAGES),
        }
        at_s = clock()
        response = await client.post("/route-and-run", json=body)
        if response.status_code == 402:  # the session's budget is used up: a new session
            session, spent = session + 1, 0.0
            continue
        result = response.json()
        observations.append(observe(result, at_s))
        if response.status_code != 200:
            continue
        spent += result["cost_usd"]
        if not scenario.labels:
            continue
        outcome = record.outcome(result["model"])
        reward = shape_reward(
            outcome.correct, result["cost_usd"], result["latency_ms"], scenario.weights(lam)
        )
        rated = await client.post(
            "/feedback",
            json={"request_id": result["id"], "reward": reward, "source": "label"},
        )
        rated.raise_for_status()


def windows_of(
    observations: Sequence[Observation], scenario: Scenario, degraded: str
) -> list[Window]:
    """``degraded``'s figures per window of ``scenario.window_s`` (scaled)."""
    width = scenario.scaled(scenario.window_s)
    phases = scenario.phases()
    windows = []
    for number in range(math.ceil(scenario.duration_s / width)):
        start = number * width
        part = [o for o in observations if start <= o.at_s < start + width]
        if not part:
            continue
        phase = next((name for name, a, b in phases if a <= start < b), phases[-1][0])
        latencies = [o.latency_ms[degraded] for o in part if degraded in o.latency_ms]
        windows.append(
            Window(
                start_s=round(start, 3),
                phase=phase,
                requests=len(part),
                probability=sum(o.pmf.get(degraded, 0.0) for o in part) / len(part),
                drawn_share=sum(o.drawn == degraded for o in part) / len(part),
                circuit_open_share=sum(degraded in o.circuit_open for o in part) / len(part),
                latency_ms=sum(latencies) / len(latencies) if latencies else None,
                failed_runs=sum(o.failed_runs for o in part),
            )
        )
    return windows


def mean_share(windows: Sequence[Window]) -> float:
    return sum(w.probability for w in windows) / len(windows) if windows else 0.0


def summarize(
    windows: Sequence[Window], scenario: Scenario
) -> tuple[float | None, float | None, float, float, float]:
    """When traffic moved (the first window after the degradation began whose probability is
    below half the warm-up's last three windows' mean), when the breaker first opened, and the
    shares before, in the outage, and at the end of the recovery."""
    degraded_from = scenario.phases()[1][1]
    before = mean_share([w for w in windows if w.phase == "warm-up"][-3:])
    after = [w for w in windows if w.start_s >= degraded_from]
    moved = next((w.start_s for w in after if w.probability < before / 2), None)
    breaker = next((w.start_s for w in after if w.circuit_open_share > 0), None)
    outage = mean_share([w for w in windows if w.phase == "outage"])
    recovered = mean_share([w for w in windows if w.phase == "recovery"][-3:])
    return moved, breaker, before, outage, recovered


def service_settings(
    scenario: Scenario,
    settings: Settings,
    workdir: Path,
    episodes: Sequence[DegradationEpisode],
) -> Settings:
    """``settings`` for a service of the scenario: the four arms (a pool file written to
    ``workdir``) on the replay pool with their latency profiles and ``episodes``, the
    session budget, the latency reference and the health windows at the time scale."""
    pool_path = workdir / "pool.yaml"
    pool_path.write_text(yaml.safe_dump(pool_document()), encoding="utf-8")
    replay = settings.replay.model_copy(
        update={
            "seed": scenario.seed,
            "stream_chunk_chars": 64,
            "retry_after_s": scenario.scaled(2.0),
            "profiles": scenario.profiles(),
            "episodes": list(episodes),
        }
    )
    return settings.model_copy(
        update={
            "port": 0,
            "seed": scenario.seed,
            "pool_config": pool_path,
            "session_budget_usd": scenario.session_budget_usd,
            "cost_ref_usd": COST_REF_USD,
            "latency_ref_ms": scenario.scaled(scenario.latency_ref_ms),
            "health_window_s": scenario.scaled(scenario.health_window_s),
            "circuit_cooldown_s": scenario.scaled(30.0),
            "latency_half_life_s": scenario.scaled(scenario.latency_half_life_s),
            "replay": replay,
        }
    )


def run_scenario(
    scenario: Scenario,
    dataset: ReplayDataset,
    settings: Settings,
    workdir: Path,
    *,
    degraded: str | None = None,
) -> Report:
    """Run the scenario against a service with ``settings`` (its store and ``anchor``;
    everything else is set here), then re-score its learned pre-generation policy. The
    degraded arm is ``degraded``, else the favourite at the end of the warm-up."""
    settings = service_settings(scenario, settings, workdir, scenario.warmup_episodes())
    replay_settings = settings.replay
    clock = Stopwatch()
    replay_app = create_replay_app(replay_settings, dataset, clock=clock)
    system: SystemPlan = replay_app.state.system
    prompts = [r for r in dataset if r.split == "train"]
    random.Random(scenario.seed).shuffle(prompts)
    observations: list[Observation] = []
    chosen: list[str] = []

    async def degrade() -> None:
        warmup_end = scenario.phases()[0][2]
        await asyncio.sleep(max(0.0, warmup_end - clock()))
        arm = degraded or favourite(
            observations, warmup_end - 3 * scenario.scaled(scenario.window_s)
        )
        system.add(scenario.degradation(arm))
        chosen.append(arm)

    async def drive(base_url: str) -> None:
        limits = httpx.Limits(max_connections=scenario.concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
            clock.start()
            await asyncio.gather(
                degrade(),
                *(
                    _client(client, worker, prompts, scenario, clock, observations)
                    for worker in range(scenario.concurrency)
                ),
            )

    with serve_in_background(
        settings, app_factory=lambda s: create_app(s, replay_app=replay_app)
    ) as service:
        asyncio.run(drive(service.base_url))
    effects = asyncio.run(_signal_effects(settings, scenario))
    windows = windows_of(observations, scenario, chosen[0])
    moved, breaker, before, outage, recovered = summarize(windows, scenario)
    return Report(
        scenario=scenario,
        degraded=chosen[0],
        anchored=settings.anchor,
        windows=windows,
        effects=effects,
        moved_at_s=moved,
        breaker_at_s=breaker,
        share_before=before,
        share_outage=outage,
        share_recovered=recovered,
        requests=len(observations),
    )


async def _signal_effects(settings: Settings, scenario: Scenario) -> list[SignalEffect]:
    """The learned pre-generation policy re-scored on its logged contexts (400 of them,
    evenly spread over the run)."""
    async with explain.open_store(settings) as database:
        loaded = await explain.load_policy(database, "pre")
        decisions = await explain.stage_decisions(database, "pre", limit=100_000)
    step = max(1, len(decisions) // 400)
    contexts = explain.contexts_of(decisions[::step])
    prices = {
        a.name: (a.input_usd_per_mtok + 3 * a.output_usd_per_mtok) / 4 for a in demo_pool().arms
    }
    try:
        return system_signal_effects(
            loaded.policy,
            contexts,
            prices,
            latency_ms=(scenario.scaled(300.0), scenario.scaled(3000.0)),
        )
    finally:
        loaded.policy.close()
