"""Per-component repair: a failed code block or prose part is rewritten by an arm the
component policy picks, with the accepted parts as context."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from features.components import Component, check_component, first_of_kind
from features.errors import NoEligibleArmError, ProviderError
from router.contexts import component_context
from router.lifecycle.decisions import trace
from router.lifecycle.kit import StageKit
from router.lifecycle.prompts import component_messages
from router.lifecycle.stages import COMPONENT
from router.lifecycle.state import Ledger, Prepared

MAX_REPAIRS = 2
"""Components rewritten per request, at most."""


async def repair(
    kit: StageKit, prep: Prepared, ledger: Ledger, components: list[Component]
) -> list[Component]:
    """Rewrite failed components with arms the component policy picks."""
    failures = [(i, r) for i, c in enumerate(components) if (r := check_component(c))]
    failed_indices = {i for i, _ in failures}
    for index, reason in failures[:MAX_REPAIRS]:
        failed = components[index]
        producer = failed.arm or ""
        health = kit.health_now()
        try:
            eligibility = kit.eligibility(prep, health, {producer})
        except NoEligibleArmError:
            break
        arms = tuple(kit.pool.arm(name) for name in eligibility.eligible)
        context = component_context(
            arms, prep.query, failed.kind, reason.split(":")[0], len(failed.text), health
        )
        drawn = kit.decider.draw(prep.journal, COMPONENT, context)
        accepted = [c for i, c in enumerate(components) if i not in failed_indices]
        messages = component_messages(prep.request.messages, accepted, failed, reason)
        details: dict[str, Any] = {"component": index, "kind": failed.kind, "failure": reason}
        kit.health.started(drawn.action)
        try:
            completion = await kit.providers[drawn.action].complete(
                prep.chat(messages, arm=kit.pool.arm(drawn.action))
            )
        except ProviderError as exc:
            kit.provider_failed(drawn.action, exc)
            await kit.decider.settle(prep.journal, drawn, 0.0)
            ledger.add(
                trace(
                    drawn,
                    outcome=f"error: {exc.message}",
                    reward=0.0,
                    masked=eligibility.masked,
                    details=details,
                )
            )
            continue
        kit.health.succeeded(drawn.action, completion.latency_ms)
        candidate = first_of_kind(completion.text, failed.kind)
        fixed = candidate is not None and check_component(candidate) is None
        if candidate is not None and fixed:
            components[index] = replace(candidate, arm=drawn.action)
            failed_indices.discard(index)
        reward = kit.reward(prep, 1.0 if fixed else 0.0, completion.cost_usd, completion.latency_ms)
        await kit.decider.settle(prep.journal, drawn, reward)
        ledger.add(
            trace(
                drawn,
                outcome="replaced" if fixed else "replacement failed too",
                reward=reward,
                masked=eligibility.masked,
                cost_usd=completion.cost_usd,
                latency_ms=completion.latency_ms,
                details=details,
            ),
            completion.cost_usd,
        )
    return components
