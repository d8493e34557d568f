"""Per-component repair: a failed code block or prose part is rewritten by an arm the
component policy picks, with the accepted parts as context.

Two sources of failure: a component's own check (``check_component``: Python that does not
parse, a refusal), settled at once by whether the replacement passes that check
(``repair``); and the judge's per-component verdict (``repair_judged``), where the answer
with its replacements is judged again and each replacement is rewarded with its own grade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from features.components import Component, assemble, check_component, first_of_kind
from features.errors import NoEligibleArmError, ProviderError
from router.contexts import component_context
from router.lifecycle.assessment import Assessment, assess, component_label
from router.lifecycle.decisions import Drawn, trace
from router.lifecycle.judge import PASSING_SCORE, ComponentVerdict
from router.lifecycle.kit import StageKit
from router.lifecycle.prompts import component_messages
from router.lifecycle.stages import COMPONENT
from router.lifecycle.state import Ledger, Prepared
from router.providers import Completion

MAX_REPAIRS = 2
"""Components rewritten per request, at most."""

JUDGE_FAILURE = "judge verdict"
"""The failure kind (the component context's ``failure``) of a component the judge failed."""


@dataclass(frozen=True)
class Rewrite:
    """One failed component's rewrite, its decision not yet rewarded. ``candidate`` is the
    first component of the failed one's kind in the new answer, attributed to its arm, when
    there is one and it passes its own check."""

    index: int
    drawn: Drawn
    masked: Mapping[str, str]
    details: dict[str, Any]
    completion: Completion
    candidate: Component | None


async def rewrite(
    kit: StageKit,
    prep: Prepared,
    ledger: Ledger,
    components: Sequence[Component],
    index: int,
    reason: str,
    failed: set[int],
    details: Mapping[str, Any] | None = None,
) -> Rewrite | None:
    """Ask an arm the component policy picks (never the component's producer) for a
    replacement of ``components[index]``, the components outside ``failed`` as context.
    None when the call failed (its decision is then settled with reward 0).

    Raises NoEligibleArmError when no arm is left to ask.
    """
    component = components[index]
    producer = component.arm or ""
    health = kit.health_now()
    eligibility = kit.eligibility(prep, health, {producer})
    arms = tuple(kit.pool.arm(name) for name in eligibility.eligible)
    context = component_context(
        arms, prep.query, component.kind, reason.split(":")[0], len(component.text), health
    )
    drawn = kit.decider.draw(prep.journal, COMPONENT, context)
    accepted = [c for i, c in enumerate(components) if i not in failed]
    messages = component_messages(prep.request.messages, accepted, component, reason)
    info: dict[str, Any] = {
        "component": index,
        "kind": component.kind,
        "failure": reason,
        **(details or {}),
    }
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
                details=info,
            )
        )
        return None
    kit.health.succeeded(drawn.action, completion.latency_ms)
    candidate = first_of_kind(completion.text, component.kind)
    if candidate is not None and check_component(candidate) is not None:
        candidate = None
    return Rewrite(
        index=index,
        drawn=drawn,
        masked=eligibility.masked,
        details=info,
        completion=completion,
        candidate=None if candidate is None else replace(candidate, arm=drawn.action),
    )


async def settle_rewrite(
    kit: StageKit,
    prep: Prepared,
    ledger: Ledger,
    done: Rewrite,
    quality: float,
    outcome: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Reward a rewrite's decision for the replacement's ``quality`` and what it cost."""
    completion = done.completion
    reward = kit.reward(prep, quality, completion.cost_usd, completion.latency_ms)
    await kit.decider.settle(prep.journal, done.drawn, reward)
    ledger.add(
        trace(
            done.drawn,
            outcome=outcome,
            reward=reward,
            masked=done.masked,
            cost_usd=completion.cost_usd,
            latency_ms=completion.latency_ms,
            details={**done.details, **(details or {})},
        ),
        completion.cost_usd,
    )


async def repair(
    kit: StageKit, prep: Prepared, ledger: Ledger, components: list[Component]
) -> list[Component]:
    """Rewrite components that fail their own check with arms the component policy picks."""
    failures = [(i, r) for i, c in enumerate(components) if (r := check_component(c))]
    failed = {i for i, _ in failures}
    for index, reason in failures[:MAX_REPAIRS]:
        try:
            done = await rewrite(kit, prep, ledger, components, index, reason, failed)
        except NoEligibleArmError:
            break
        if done is None:
            continue
        if done.candidate is not None:
            components[index] = done.candidate
            failed.discard(index)
        fixed = done.candidate is not None
        await settle_rewrite(
            kit,
            prep,
            ledger,
            done,
            1.0 if fixed else 0.0,
            "replaced" if fixed else "replacement failed too",
        )
    return components


def judged_failures(assessment: Assessment) -> list[ComponentVerdict]:
    """The components to re-route on the judge's word: those it failed, when it failed the
    answer and passed at least one other component. Empty otherwise (the answer passed, was
    not judged per component, or every component failed: then the whole answer is the
    escalation stage's to handle)."""
    verdict = assessment.verdict
    if verdict is None or verdict.score >= PASSING_SCORE or not verdict.components:
        return []
    failed = [c for c in verdict.components if not c.passed]
    return failed if len(failed) < len(verdict.components) else []


def failure_reason(judge_arm: str, verdict: ComponentVerdict) -> str:
    """What the model asked for a replacement is told (its kind is ``JUDGE_FAILURE``)."""
    return (
        f"{JUDGE_FAILURE}: judge {judge_arm} scored {component_label(verdict)} "
        f"{verdict.score:g}: {verdict.reason}"
    )


async def repair_judged(
    kit: StageKit,
    prep: Prepared,
    ledger: Ledger,
    components: list[Component],
    assessment: Assessment,
) -> tuple[list[Component], Assessment]:
    """Re-route the components the judge failed (``judged_failures``), the ones it passed as
    context, then validate and judge the answer with its replacements (judged whatever the
    judge mode: the two answers are compared on the judge's word). Each rewrite is rewarded
    with its replacement's grade; the repaired answer is kept (with its assessment) when its
    quality is at least the first answer's, else the first answer stays."""
    verdict = assessment.verdict
    targets = judged_failures(assessment)
    if verdict is None or not targets:
        return components, assessment
    failed = {c.index for c in targets}
    repaired = list(components)
    rewrites: list[Rewrite] = []
    for target in targets[:MAX_REPAIRS]:
        reason = failure_reason(verdict.arm, target)
        details = {"source": "judge", "verdict": target.as_json()}
        try:
            done = await rewrite(
                kit, prep, ledger, components, target.index, reason, failed, details
            )
        except NoEligibleArmError:
            break
        if done is None:
            continue
        rewrites.append(done)
        if done.candidate is not None:
            repaired[done.index] = done.candidate
    if all(done.candidate is None for done in rewrites):
        for done in rewrites:
            await settle_rewrite(kit, prep, ledger, done, 0.0, "replacement failed too")
        return components, assessment
    request = prep.request
    second = await assess(
        assemble(repaired),
        "stop",
        request.messages,
        request.expectations(),
        replace(request.stages, judge="always"),
        kit.judge,
        kit.rng,
        components=repaired,
    )
    ledger.cost_usd += second.judge_cost_usd
    keep = second.quality >= assessment.quality
    grades = {c.index: c for c in second.verdict.components} if second.verdict else {}
    for done in rewrites:
        grade = grades.get(done.index)
        if done.candidate is None:
            quality, outcome = 0.0, "replacement failed too"
        else:
            quality = grade.score if grade is not None else second.quality
            outcome = "replaced" if keep else "replaced, then reverted: the answer got worse"
        await settle_rewrite(
            kit,
            prep,
            ledger,
            done,
            quality,
            outcome,
            {"replacement_verdict": grade.as_json() if grade is not None else None},
        )
    return (repaired, second) if keep else (components, assessment)
