import numpy as np

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
