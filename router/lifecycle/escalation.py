"""Post-generation escalation: accept the answer, or send it with the reasons it failed to
another arm, and keep the better answer.

One step of a chain: the router calls ``escalate`` again on an answer that replaced the last
one, up to ``StageOptions.max_escalations`` times, each time to an arm not tried yet; the
chain ends at the first step the policy accepts, whose escalation fails (error or cut) or
whose answer is no better than the one it escalated.

The escalated answer is validated and judged (its verdict is the escalation decision's
reward, and what the next step decides on), except when the policies do not learn, no step
follows and the first answer is worth 0: it is then kept whatever the judge would say, and
the judge is not asked (the reward is the validators' quality, as for any unjudged
answer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from features.anomalies import standard_detectors
from features.components import Component, attribute, split_components
from features.errors import NoEligibleArmError, ProviderError
from features.output import output_features
from learner.anchor import AnchorConfig, Evidence
from router.contexts import escalation_context
from router.lifecycle.assessment import Assessment, assess, failed_tool_calls
from router.lifecycle.decisions import Rule, trace
from router.lifecycle.generating import FAILED_RUN_REWARD
from router.lifecycle.generation import Cut, monitored_run
from router.lifecycle.kit import StageKit
from router.lifecycle.prompts import escalation_messages, rendered_answer
from router.lifecycle.stages import ACCEPT, ESCALATE_PREFIX, ESCALATION, escalate_action
from router.lifecycle.state import Ledger, Prepared
from router.pool import Arm
from router.providers import Completion, Delta
from router.trace import Switch


@dataclass(frozen=True)
class Escalated:
    """The answer that replaced the escalated one, and its assessment."""

    completion: Completion
    assessment: Assessment

    @property
    def components(self) -> list[Component]:
        """The new answer's components, every one written by the arm it was escalated to."""
        return attribute(split_components(self.completion.text), self.completion.arm)


async def escalate(
    kit: StageKit,
    prep: Prepared,
    ledger: Ledger,
    text: str,
    completion: Completion,
    assessment: Assessment,
    *,
    tried: frozenset[str] = frozenset(),
    chained: bool = False,
) -> AsyncIterator[Switch | Delta | Escalated]:
    """Accept the answer or escalate it to an arm outside ``tried`` (the answering arm is
    never a target); yields the new answer when one replaces it. ``chained``: a further step
    may follow, so the escalated answer's verdict is needed (when a target is left for it)."""
    answered_by = completion.arm
    health = kit.health_now()
    try:
        eligible = kit.eligibility(prep, health, {answered_by, *tried}).eligible
    except NoEligibleArmError:
        return
    targets = escalation_targets(kit, answered_by, eligible, tried)
    if not targets:
        return
    output = output_features(
        text,
        completion.finish_reason,
        assessment.validation,
        assessment.judge_score,
        answered_by,
    )
    context = escalation_context(prep.query, output, targets, health, ACCEPT, escalate_action)
    evidence = kit.decider.evidence(ESCALATION, prep.request.tenant)
    target = rule_target(
        targets,
        evidence,
        kit.decider.anchor,
        then=chained and prep.request.stages.escalation_ladder,
    )
    rule = escalation_rule(assessment, answered_by, target)
    drawn = kit.decider.draw(prep.journal, ESCALATION, context, rule)
    signals = {"query": dict(prep.query.as_features()), "output": output}
    details: dict[str, Any] = {"assessment": assessment.as_json()}
    if drawn.action == ACCEPT:
        reward = kit.reward(prep, assessment.quality, 0.0, 0.0)
        await kit.decider.settle(prep.journal, drawn, reward)
        ledger.add(
            trace(drawn, outcome="accepted", reward=reward, signals=signals, details=details)
        )
        return
    target = kit.pool.arm(drawn.action.removeprefix(ESCALATE_PREFIX))
    reasons = assessment.reasons() or ["the escalation policy asked a stronger model"]
    rejected = (
        rendered_answer(text, completion.tool_calls)
        if prep.request.stages.escalation_context == "answer"
        else None
    )
    messages = escalation_messages(prep.request.messages, rejected, reasons)
    details["reasons"] = reasons
    details["escalation_prompt"] = str(messages[-1].get("content", ""))
    new: Completion | None = None
    spent = 0.0
    kit.health.started(target.name)
    try:
        async for event in monitored_run(
            kit.providers[target.name],
            target,
            prep.chat(messages, arm=target),
            standard_detectors(
                query_language=prep.query.language,
                json_requested=prep.query.json_requested,
            ),
            stall_ms=prep.request.stages.stall_ms,
            clock=kit.clock,
        ):
            if isinstance(event, Cut):
                kit.health.cancelled(target.name, event.latency_ms)
                spent = event.cost_usd
                details["cut"] = event.anomaly.reason
            elif isinstance(event, Completion):
                kit.health.succeeded(target.name, event.latency_ms)
                new = event
    except ProviderError as exc:
        kit.provider_failed(target.name, exc)
        details["error"] = exc.message
    if new is None:
        reward = kit.reward(prep, 0.0, spent, 0.0)
        await kit.decider.settle(prep.journal, drawn, reward)
        ledger.add(
            trace(
                drawn,
                outcome="escalation failed; kept the answer",
                reward=reward,
                signals=signals,
                cost_usd=spent,
                details=details,
            ),
            spent,
        )
        return
    second = await assess(
        new.text,
        new.finish_reason,
        prep.request.messages,
        prep.request.expectations(),
        prep.request.stages,
        kit.judge
        if verdict_matters(kit, assessment, next_step=chained and len(targets) > 1)
        else None,
        kit.rng,
        calls=new.tool_calls,
    )
    cost = new.cost_usd + second.judge_cost_usd
    reward = (
        FAILED_RUN_REWARD
        if failed_tool_calls(second.validation)
        else kit.reward(prep, second.quality, cost, new.latency_ms)
    )
    await kit.decider.settle(prep.journal, drawn, reward)
    better = second.quality >= assessment.quality
    details["escalated_assessment"] = second.as_json()
    ledger.add(
        trace(
            drawn,
            outcome="escalated; answer replaced" if better else "escalated; kept the answer",
            reward=reward,
            signals=signals,
            cost_usd=cost,
            latency_ms=new.latency_ms,
            details=details,
        ),
        cost,
    )
    if not better:
        return
    if prep.request.stream:
        yield Switch(ESCALATION, answered_by, target.name, "; ".join(reasons))
        yield Delta(new.text)
    yield Escalated(new, second)


def escalation_targets(
    kit: StageKit,
    answered_by: str,
    eligible: Collection[str],
    tried: Collection[str] = (),
) -> tuple[Arm, ...]:
    """The arms an answer of ``answered_by`` may be escalated to: none when ``answered_by``
    is the first of the pool's ``escalation_targets`` (the strongest: the top of the ladder,
    with no stronger arm to go to, whether the answer was its first or a chain's step);
    else the pool's ``escalation_targets`` that can serve the request, in their order. When
    there are none:
    none either if a chain reached ``answered_by`` by escalating to one of them (``tried``,
    the arms that answered before it, is not empty): it has climbed every rung that can
    serve the request, and an arm left off the ladder is no step up; else (the pool
    configures none, or none of them can serve the request: a tool request in a pool whose
    targets call no tools) every eligible arm, dearest first, never one cheaper than the
    answering arm (before any evidence, price is the only sign of strength such a pool
    gives; ``rule_target`` then picks by value)."""
    ladder = kit.pool.escalation_targets
    if ladder and answered_by == ladder[0]:
        return ()
    configured = [name for name in ladder if name in eligible]
    if configured:
        return tuple(kit.pool.arm(name) for name in configured)
    if tried and answered_by in ladder:
        return ()
    floor = kit.pool.arm(answered_by).output_usd_per_mtok
    return tuple(
        kit.pool.arm(name)
        for name in kit.pool.arms_by_price()
        if name in eligible and kit.pool.arm(name).output_usd_per_mtok >= floor
    )


def rule_target(
    targets: Sequence[Arm],
    evidence: Evidence,
    anchor: AnchorConfig | None,
    *,
    then: bool = False,
) -> Arm:
    """The target the escalation rule sends a failed answer to: of the ``targets`` whose
    escalations have been rewarded often enough (``anchor.min_evidence``, pooled over every
    bucket), the one whose escalations earned the most reward, the reward being quality for
    the cost under the pool's objective; the first target until one has that evidence, or
    with anchoring off (the strongest configured target, or by default the dearest arm).

    ``then``: a further step of the chain may follow this one. The rule then climbs a
    ladder: it keeps the first target (the strongest) for the step after, and tries one of
    the others first, the one whose escalations earned the most once they have the
    evidence, else the cheapest. Cheap arms are often right where another cheap one failed,
    and a second cheap attempt with its verdict costs a fraction of the strongest arm's
    answer, which still follows when the judge rejects the cheap attempt."""
    if then and len(targets) > 1:
        cheaper = targets[1:]
        if anchor is not None:
            actions = [escalate_action(target.name) for target in cheaper]
            best = evidence.best_pooled(actions, anchor)
            if best is not None:
                return cheaper[actions.index(best)]
        return min(cheaper, key=lambda t: (t.output_usd_per_mtok, t.input_usd_per_mtok, t.name))
    if anchor is None:
        return targets[0]
    actions = [escalate_action(target.name) for target in targets]
    best = evidence.best_pooled(actions, anchor)
    return targets[0] if best is None else targets[actions.index(best)]


def escalation_rule(assessment: Assessment, answered_by: str, target: Arm) -> Rule:
    """The rule the escalation stage starts from: accept an answer whose checks passed,
    escalate one that failed them to ``target`` (``rule_target``). Its evidence is pooled per
    verdict (failed or passed, judged or not) and answering arm."""
    failed = assessment.quality < 0.5
    judged = "judged" if assessment.judge_score is not None else "unjudged"
    action = escalate_action(target.name) if failed else ACCEPT
    return Rule(action, f"{'failed' if failed else 'passed'}|{judged}|{answered_by}")


def verdict_matters(kit: StageKit, first: Assessment, *, next_step: bool = False) -> bool:
    """Whether judging the escalated answer can change anything: its verdict is the
    escalation decision's reward when the policies learn, what a chain's ``next_step``
    decides on, and otherwise only decides which answer is kept, which it cannot when the
    first answer is already worth 0 (the escalated one replaces it whatever its score). A
    judge call that changes nothing is not paid for."""
    return next_step or kit.decider.learns or first.quality > 0.0
