"""Which arms may serve a request: constraints and circuit state mask arms before the draw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from features.errors import NoEligibleArmError
from features.query import Message, image_count
from features.system import ArmHealth
from router.pool import Arm

DEFAULT_OUTPUT_TOKENS = 512
"""Output length assumed for cost and context checks when the request sets no max_tokens."""


@dataclass(frozen=True)
class Constraints:
    """A request's limits. None means no limit.

    ``arms``, when set, are the only arms that may serve (a route profile's subset).
    """

    max_cost_usd: float | None = None
    max_latency_ms: float | None = None
    capabilities: frozenset[str] = frozenset()
    arms: frozenset[str] | None = None
    needs: Mapping[str, str] = field(default_factory=dict)
    """Capabilities the request itself needs (images, tools, ...), each with its reason;
    they mask arms like ``capabilities``, and the mask says why."""

    def with_needs(self, needs: Mapping[str, str]) -> Constraints:
        return Constraints(
            self.max_cost_usd, self.max_latency_ms, self.capabilities, self.arms, dict(needs)
        )


def request_needs(
    messages: Sequence[Message], *, tools: bool = False, reasoning: bool = False
) -> dict[str, str]:
    """The capabilities a request needs of the arm that answers it, and why."""
    needs: dict[str, str] = {}
    if any(image_count(m) for m in messages):
        needs["vision"] = "the request has image parts"
    if tools:
        needs["tools"] = "the request offers tools"
    if reasoning:
        needs["reasoning"] = "the request sets reasoning_effort"
    return needs


def missing_needs(arm: Arm, needs: Mapping[str, str]) -> str | None:
    """Why ``arm`` cannot serve a request with ``needs``, or None when it can."""
    missing = sorted(set(needs) - arm.capabilities)
    if not missing:
        return None
    return "; ".join(f"lacks capability {name} ({needs[name]})" for name in missing)


@dataclass(frozen=True)
class Eligibility:
    """The arms that may be drawn, in pool order, and why each other arm was masked."""

    eligible: tuple[str, ...]
    masked: Mapping[str, str]


def mask_reason(
    arm: Arm,
    health: ArmHealth,
    constraints: Constraints,
    prompt_tokens: int,
    output_tokens: int,
) -> str | None:
    """Why ``arm`` cannot serve this request, or None when it can."""
    if constraints.arms is not None and arm.name not in constraints.arms:
        return "not among the request's allowed arms"
    if not health.available:
        return "circuit open"
    if prompt_tokens + output_tokens > arm.context_window:
        return (
            f"needs {prompt_tokens + output_tokens} tokens, context window is {arm.context_window}"
        )
    missing = constraints.capabilities - arm.capabilities
    if missing:
        return f"lacks capability {', '.join(sorted(missing))}"
    if arm.serves_only and not arm.serves_only & (
        set(constraints.needs) | constraints.capabilities
    ):
        return f"serves only requests that need {', '.join(sorted(arm.serves_only))}"
    needed = missing_needs(arm, constraints.needs)
    if needed is not None:
        return needed
    if constraints.max_cost_usd is not None:
        estimate = arm.price_usd(prompt_tokens, output_tokens)
        if estimate > constraints.max_cost_usd:
            return (
                f"estimated cost ${estimate:.6f} exceeds max_cost_usd ${constraints.max_cost_usd:g}"
            )
    p95 = health.latency_p95_ms
    if (
        constraints.max_latency_ms is not None
        and p95 is not None
        and p95 > constraints.max_latency_ms
    ):
        return f"p95 latency {p95:.0f} ms exceeds max_latency_ms {constraints.max_latency_ms:g}"
    return None


def eligible_arms(
    arms: tuple[Arm, ...],
    health: Mapping[str, ArmHealth],
    constraints: Constraints,
    prompt_tokens: int,
    output_tokens: int | None,
    exclude: frozenset[str] = frozenset(),
) -> Eligibility:
    """Mask arms; raise NoEligibleArmError (naming each arm's reason) when none is left."""
    expected_output = output_tokens or DEFAULT_OUTPUT_TOKENS
    masked: dict[str, str] = {}
    eligible: list[str] = []
    for arm in arms:
        if arm.name in exclude:
            masked[arm.name] = "already failed for this request"
            continue
        reason = mask_reason(
            arm, health.get(arm.name, ArmHealth()), constraints, prompt_tokens, expected_output
        )
        if reason is None:
            eligible.append(arm.name)
        else:
            masked[arm.name] = reason
    if not eligible:
        allowed = [a for a in arms if constraints.arms is None or a.name in constraints.arms]
        for need, why in constraints.needs.items():
            if not any(need in arm.capabilities for arm in allowed):
                raise NoEligibleArmError(
                    f"no arm that may serve this request has the {need} capability, and "
                    f"{why}: arms declare it in the pool file (capabilities: [{need}])"
                )
        reasons = "; ".join(f"{name}: {why}" for name, why in masked.items())
        raise NoEligibleArmError(f"no arm satisfies the request's constraints ({reasons})")
    return Eligibility(eligible=tuple(eligible), masked=masked)
