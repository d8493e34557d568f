"""A seeded simulation of the degradation scenario's warm-up, in process: does a pre-generation
policy learn the right sign for every system signal from traffic that varies them?

The parts are the router's own: the replay pool's latency profiles and degradation episodes
(``SystemPlan``) on a simulated clock, the ``HealthTracker`` fed by every call as the router
feeds it, contexts with the router's arm (``A``), health (``S``) and budget (``H``) features,
the reward of ``learner.reward`` priced like the scenario's objective (latency included, cost
weighed more as the session's budget runs down), and a real VW policy drawing and learning.
Query and neighbour signals are left out: they do not vary the system signals, and leaving
them out lets a few thousand requests run in seconds. Every draw comes from the seed, so a
run is the same every time: a test can hold the signs to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.system import Spend, health_features, spend_features
from learner.config import PolicyConfig
from learner.context import ArmFeatures, Context
from learner.reward import shape_reward
from learner.sampling import sample_index
from learner.signal_effects import SignalEffect, system_signal_effects
from learner.vw_policy import VWPolicy
from router.contexts import arm_identity
from router.health import HealthConfig, HealthTracker
from router.pool import Arm, demo_pool
from router.providers.openai_compat import parse_rate_limit
from router.tools.replay_pool.conditions import SystemPlan
from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.replay_pool.protocol import estimate_tokens
from router.tools.service_bench.degradation import PROFILES, Scenario


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Simulated:
    """What a simulation learned, and the effects measured on it."""

    requests: int
    failures: int
    effects: list[SignalEffect]


def blended_price(arm: Arm) -> float:
    """USD per million tokens, three output tokens to one input token."""
    return (arm.input_usd_per_mtok + 3 * arm.output_usd_per_mtok) / 4


def simulate(
    scenario: Scenario,
    dataset: ReplayDataset,
    *,
    requests: int = 3000,
    requests_per_s: float = 6.0,
    labels: bool = True,
) -> Simulated:
    """``requests`` requests (Poisson arrivals) through the warm-up's episodes, repeated;
    the reward's quality is the recorded correctness (``labels``) or 1 (rewards then differ
    by cost, latency and failures only). Effects are measured on 400 contexts spread over
    the run."""
    seed = scenario.seed
    arms = [arm for arm in demo_pool().arms if arm.name in PROFILES]
    names = [arm.name for arm in arms]
    train = [record for record in dataset if record.split == "train"]
    clock = _Clock()
    rng = np.random.default_rng(seed)
    tracker = HealthTracker(
        names,
        HealthConfig(
            error_window_s=scenario.scaled(scenario.health_window_s),
            latency_half_life_s=scenario.scaled(scenario.latency_half_life_s),
            cooldown_s=scenario.scaled(30.0),
        ),
        clock=clock,
    )
    system = SystemPlan(
        scenario.profiles(),
        scenario.warmup_episodes(repeat=True),
        np.random.default_rng([seed, 1]),
        clock=clock,
    )
    policy = VWPolicy("pre", PolicyConfig(exploration="squarecb", seed=seed))
    every = max(1, requests // 400)
    contexts: list[Context] = []
    spent, failures = 0.0, 0
    try:
        for index in range(requests):
            clock.now += float(rng.exponential(1.0 / requests_per_s))
            health = {name: tracker.snapshot(name) for name in names}
            open_ = [arm for arm in arms if health[arm.name].available]
            spend = Spend(session_usd=spent, session_budget_usd=scenario.session_budget_usd)
            context = Context(
                shared={"H": spend_features(spend)},
                arms=tuple(
                    ArmFeatures(
                        arm=arm.name,
                        namespaces={
                            "A": arm_identity(arm),
                            "S": health_features(health[arm.name]),
                        },
                    )
                    for arm in open_
                ),
            )
            pmf = policy.pmf(context)
            chosen = open_[sample_index(pmf, rng)].name
            record = train[int(rng.integers(len(train)))]
            outcome = record.outcome(chosen)
            timing = system.draw(chosen, 0.0)
            tracker.started(chosen)
            if timing.failure is not None:
                limited = timing.failure == "rate_limit"
                tracker.failed(
                    chosen,
                    retry_after_s=scenario.scaled(2.0) if limited else None,
                    rate_limited=limited,
                )
                reward = 0.0
                failures += 1
            else:
                tokens = estimate_tokens(outcome.response)
                pace = timing.tokens_per_s or float("inf")
                latency_ms = timing.ttft_ms + 1000.0 * tokens / pace
                headroom = parse_rate_limit(timing.headers).headroom  # as the provider reads it
                tracker.succeeded(chosen, latency_ms, headroom)
                weights = scenario.weights(scenario.lambda_cost(spent))
                quality = outcome.correct if labels else 1.0
                reward = shape_reward(quality, outcome.cost_usd, latency_ms, weights)
                spent += outcome.cost_usd
                if spent >= scenario.session_budget_usd:  # a new session
                    spent = 0.0
            policy.learn(context, chosen, pmf[context.index(chosen)], reward)
            if index % every == 0:
                contexts.append(context)
        prices = {arm.name: blended_price(arm) for arm in arms}
        effects = system_signal_effects(
            policy,
            contexts,
            prices,
            latency_ms=(scenario.scaled(300.0), scenario.scaled(3000.0)),
        )
    finally:
        policy.close()
    return Simulated(requests=requests, failures=failures, effects=effects)
