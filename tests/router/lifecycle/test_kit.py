import numpy as np
import pytest

from features.errors import ProviderRejectedError, ProviderServerError
from features.system import CircuitState
from router.health import HealthConfig, HealthTracker
from router.lifecycle.decisions import Decider
from router.lifecycle.kit import StageKit
from router.pool import demo_pool


def kit(health: HealthTracker) -> StageKit:
    rng = np.random.default_rng(0)
    return StageKit(
        pool=demo_pool(),
        providers={},
        health=health,
        decider=Decider(None, rng),  # type: ignore[arg-type]
        rng=rng,
    )


def test_requests_a_provider_refuses_do_not_open_its_circuit() -> None:
    health = HealthTracker(["a"], HealthConfig(open_after_consecutive_failures=3))
    stages = kit(health)
    for _ in range(10):
        health.started("a")
        stages.provider_failed("a", ProviderRejectedError("400: bad request", arm="a"))
    assert health.snapshot("a").circuit is CircuitState.CLOSED
    assert health.snapshot("a").in_flight == 0
    for _ in range(3):
        health.started("a")
        stages.provider_failed("a", ProviderServerError("503", arm="a"))
    assert health.snapshot("a").circuit is CircuitState.OPEN


def test_the_pre_generation_rule_steps_aside_while_its_arm_is_degraded() -> None:
    from types import SimpleNamespace

    from learner.context import ArmFeatures, Context
    from router.lifecycle.generating import pre_generation_rule
    from tests.router.lifecycle.fakes import FixedPolicies

    arms = ("cheap", "strong")
    policies = FixedPolicies()
    for _ in range(25):
        policies.evidence("pre").add("category:any", "strong", 1.0)
        policies.evidence("pre").add("category:any", "cheap", 0.2)
    health = HealthTracker(arms)
    rng = np.random.default_rng(0)
    stages = StageKit(
        pool=demo_pool(),
        providers={},
        health=health,
        decider=Decider(policies, rng),  # type: ignore[arg-type]
        rng=rng,
    )
    prep = SimpleNamespace(
        request=SimpleNamespace(tenant=None), query=SimpleNamespace(categories={})
    )
    context = Context(shared={}, arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in arms))
    for latency in [100.0] * 10:
        health.started("strong")
        health.succeeded("strong", latency)
    rule = pre_generation_rule(stages, prep, context)  # type: ignore[arg-type]
    assert rule is not None
    assert rule.action == "strong"
    for latency in [1000.0] * 3:  # three times slower than usual and more
        health.started("strong")
        health.succeeded("strong", latency)
    rule = pre_generation_rule(stages, prep, context)  # type: ignore[arg-type]
    assert rule is not None
    assert rule.action is None
    assert rule.bucket == "category:any"


def test_the_upper_bound_pre_generation_rule_tries_an_arm_few_rewards_condemn() -> None:
    """With ``learning_rule`` upper_bound, learning, the rule is the arm whose mean reward may
    be the highest (an arm rewarded twice is tried again, not left behind the one served
    first); with best_mean, or frozen, the best mean among arms with enough rewards."""
    from types import SimpleNamespace

    from learner.anchor import AnchorConfig
    from learner.context import ArmFeatures, Context
    from router.lifecycle.generating import pre_generation_rule
    from tests.router.lifecycle.fakes import FixedPolicies

    arms = ("cheap", "strong")
    policies = FixedPolicies()
    for _ in range(30):
        policies.evidence("pre").add("category:any", "cheap", 0.6)
    for reward in (0.3, 0.7):  # mean 0.5, but its bound 0.5 + 1.5 * 0.2 beats cheap's 0.63
        policies.evidence("pre").add("category:any", "strong", reward)
    prep = SimpleNamespace(
        request=SimpleNamespace(tenant=None), query=SimpleNamespace(categories={})
    )
    context = Context(shared={}, arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in arms))
    actions = {}
    for rule_name in ("best_mean", "upper_bound"):
        for learn in (True, False):
            rng = np.random.default_rng(0)
            anchor = AnchorConfig(learning_rule=rule_name)
            kit = StageKit(
                pool=demo_pool(),
                providers={},
                health=HealthTracker(arms),
                decider=Decider(policies, rng, learn=learn, anchor=anchor),  # type: ignore[arg-type]
                rng=rng,
            )
            rule = pre_generation_rule(kit, prep, context)  # type: ignore[arg-type]
            assert rule is not None
            actions[rule_name, learn] = rule.action
    assert actions == {
        ("best_mean", True): "cheap",
        ("best_mean", False): "cheap",
        ("upper_bound", True): "strong",
        ("upper_bound", False): "cheap",
    }
    with pytest.raises(ValueError, match="learning_rule"):
        AnchorConfig(learning_rule="luck")  # type: ignore[arg-type]
