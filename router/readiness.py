"""Which arms can serve now, and why the others cannot: the per-arm side of ``/readyz``.

An arm cannot serve while its circuit is open (its recent calls failed; the router skips it
until the cool-down ends) or while its provider's address does not answer. The service is
ready while the store answers and at least one arm can serve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from features.system import ArmHealth, CircuitState


def unavailable_arms(
    arms: Sequence[str],
    health: Mapping[str, ArmHealth],
    unreachable: Mapping[str, str],
) -> dict[str, str]:
    """Arm name to why it cannot serve, in pool order; arms that can serve are absent."""
    reasons: dict[str, str] = {}
    for arm in arms:
        found: list[str] = []
        snapshot = health.get(arm)
        if snapshot is not None and snapshot.circuit is CircuitState.OPEN:
            found.append(
                f"circuit open: {snapshot.error_rate:.0%} of its last "
                f"{snapshot.calls_in_window} calls failed"
            )
        if arm in unreachable:
            found.append(unreachable[arm])
        if found:
            reasons[arm] = "; ".join(found)
    return reasons
