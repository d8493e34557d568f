"""Pre- and in-generation: draw an arm, stream its answer through the detectors, cut and
draw again (with the in-generation policy) when one fires; mask failing providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from features.anomalies import standard_detectors
from features.errors import NoEligibleArmError, ProviderError
from features.system import degraded
from features.tool_calls import ToolArgumentsDetector
from learner.context import Context
from router.constraints import Eligibility
from router.contexts import build_context, in_generation_context
from router.lifecycle.decisions import Drawn, Rule, trace
from router.lifecycle.generation import Cut, monitored_run
from router.lifecycle.kit import StageKit
from router.lifecycle.stages import IN_GENERATION, PRE_GENERATION
from router.lifecycle.state import Generated, Ledger, Prepared
from router.providers import Delta, ToolCallDelta
from router.trace import Switch

LAST_RUN_DETECTORS = frozenset({"cost_cap"})
"""The detectors that still cut a request's last run (no switch left, or no other arm):
only the caller's own cost cap. Content detectors (format, refusal, repetition, language,
tool arguments) let it finish, so a request whose every arm misses a check gets the best
answer obtained, validated, possibly escalated and marked, instead of an error."""

FAILED_RUN_REWARD = 0.0
"""The reward of a run that delivered nothing, cut by a detector or failed: the lowest there
is, whatever it cost (it still forces another run), the same for a cut as for an error."""


def pre_generation_rule(kit: StageKit, prep: Prepared, context: Context) -> Rule | None:
    """The rule the pre-generation stage starts from, over every request's rewards: while
    learning, with the anchor's ``learning_rule`` ``upper_bound`` (the default), the eligible
    arm whose mean reward may be the highest (every arm has one from the first request);
    frozen, or with ``best_mean``, the arm with the best mean reward (what choosing the best
    single model amounts to) once some arm has enough rewards to be called best (before, the
    policy explores alone and the rewards count as evidence); None with anchoring off. Its
    evidence is pooled per query
    category, where the policy's own choice may overrule it. While that arm is degraded
    (``features.system.degraded``: slower than usual, failing, rate-limited) the rule has no
    action: its evidence is the arm's past, and the policy reads the signals of its present."""
    anchor = kit.decider.anchor
    if anchor is None:
        return None
    evidence = kit.decider.evidence(PRE_GENERATION, prep.request.tenant)
    best = (
        evidence.most_promising(context.arm_names, anchor)
        if kit.decider.explores and anchor.learning_rule == "upper_bound"
        else evidence.best_pooled(context.arm_names, anchor)
    )
    if best is not None and degraded(kit.health.snapshot(best)):
        best = None
    categories = prep.query.categories
    bucket = max(categories, key=lambda name: categories[name]) if categories else "any"
    return Rule(best, f"category:{bucket}")


def choose(
    kit: StageKit,
    prep: Prepared,
    stage: str,
    excluded: set[str],
    cut: tuple[str, Cut] | None = None,
) -> tuple[Eligibility, Drawn]:
    """Mask the arms, build the context and draw (and journal) one decision of ``stage``;
    at pre-generation a pinned conversation keeps its previous arm, and ``cut`` (the arm and
    the cut of the last run) goes into an in-generation context. The first draw of a
    request notes the router's overhead in ``prep.timings``.

    Raises NoEligibleArmError when no arm is left.
    """
    request = prep.request
    checked = prep.checked
    if (
        stage == PRE_GENERATION
        and not excluded
        and checked is not None
        and checked.changes == kit.health.changes
    ):  # the request's check is still true: no call began or ended since
        health, eligibility = checked.health, checked.eligibility
    else:
        health = kit.health_now()
        eligibility = kit.eligibility(prep, health, excluded)
    previous = prep.previous_arm
    if stage == PRE_GENERATION and request.stickiness == "pin" and previous in eligibility.eligible:
        pinned = f"the conversation is pinned to {previous}, its previous turn's arm"
        others = {name: pinned for name in eligibility.eligible if name != previous}
        eligibility = Eligibility((previous,), {**eligibility.masked, **others})
    arms = tuple(kit.pool.arm(name) for name in eligibility.eligible)
    building = kit.clock()
    context = build_context(
        arms, prep.query, prep.history, prep.user_history, health, prep.spend, previous
    )
    if stage == IN_GENERATION and cut is not None:
        context = in_generation_context(context, cut[0], cut[1].anomaly.detector, len(cut[1].text))
    drawing = kit.clock()
    rule = pre_generation_rule(kit, prep, context) if stage == PRE_GENERATION else None
    drawn = kit.decider.draw(prep.journal, stage, context, rule)
    drawn_at = kit.clock()
    # Router overhead before the first model call: signals, kNN, policy, draw.
    if "decision_ms" not in prep.timings:
        prep.timings["context_ms"] = (drawing - building) * 1000.0
        prep.timings["draw_ms"] = (drawn_at - drawing) * 1000.0
        prep.timings["decision_ms"] = (kit.clock() - prep.started) * 1000.0
    return eligibility, drawn


async def generate(
    kit: StageKit, prep: Prepared, ledger: Ledger
) -> AsyncIterator[Delta | Switch | Generated]:
    """Draw arms and run them until one completes; cut runs the detectors flag."""
    request = prep.request
    stages = request.stages
    excluded: set[str] = set()
    stage = PRE_GENERATION
    cut: tuple[str, Cut] | None = None
    shown_arm: str | None = None
    last_reason = ""
    errors = switches = 0
    while errors < kit.max_attempts and switches <= stages.max_switches:
        try:
            eligibility, drawn = choose(kit, prep, stage, excluded, cut)
        except NoEligibleArmError:
            return
        arm = kit.pool.arm(drawn.action)
        signals = decision_signals(drawn.context, arm.name)
        detectors = (
            standard_detectors(
                query_language=prep.query.language,
                json_requested=prep.query.json_requested,
                max_cost_usd=request.constraints.max_cost_usd,
                prompt_tokens=prep.query.tokens_est,
                input_usd_per_mtok=arm.input_usd_per_mtok,
                output_usd_per_mtok=arm.output_usd_per_mtok,
            )
            if stages.in_generation
            else []
        )
        last_run = switches == stages.max_switches or len(eligibility.eligible) == 1
        if last_run:
            detectors = [d for d in detectors if d.name in LAST_RUN_DETECTORS]
        held = ""
        released = False
        kit.health.started(arm.name)
        try:
            async for event in monitored_run(
                kit.providers[arm.name],
                arm,
                prep.chat(arm=arm),
                detectors,
                stall_ms=stages.stall_ms,
                clock=kit.clock,
                tool_arguments=(
                    ToolArgumentsDetector()
                    if request.tools and stages.in_generation and not last_run
                    else None
                ),
            ):
                if isinstance(event, ToolCallDelta):
                    continue  # a routed answer's tool calls go out with the answer
                if isinstance(event, Delta):
                    if not request.stream:
                        continue
                    if released:
                        yield event
                        continue
                    held += event.text
                    if len(held) >= stages.holdback_chars:
                        if shown_arm is not None and shown_arm != arm.name:
                            yield Switch(stage, shown_arm, arm.name, last_reason)
                        yield Delta(held)
                        held, released, shown_arm = "", True, arm.name
                elif isinstance(event, Cut):
                    kit.health.cancelled(arm.name, event.latency_ms)
                    reward = FAILED_RUN_REWARD
                    await kit.decider.settle(prep.journal, drawn, reward)
                    ledger.add(
                        trace(
                            drawn,
                            outcome=f"cut: {event.anomaly.reason}",
                            reward=reward,
                            signals=signals,
                            masked=eligibility.masked,
                            cost_usd=event.cost_usd,
                            latency_ms=event.latency_ms,
                            details={
                                "detector": event.anomaly.detector,
                                "chars_before_cut": len(event.text),
                                "client_saw_text": released,
                            },
                        ),
                        event.cost_usd,
                    )
                    excluded.add(arm.name)
                    stage, cut = IN_GENERATION, (arm.name, event)
                    last_reason = event.anomaly.reason
                    switches += 1
                    break
                else:
                    kit.health.succeeded(arm.name, event.latency_ms, event.rate_limit.headroom)
                    if request.stream and not released:
                        if shown_arm is not None and shown_arm != arm.name:
                            yield Switch(stage, shown_arm, arm.name, last_reason)
                        if held:
                            yield Delta(held)
                    yield Generated(drawn, event, signals, eligibility.masked, last_run)
                    return
        except ProviderError as exc:
            kit.provider_failed(arm.name, exc)
            await kit.decider.settle(prep.journal, drawn, FAILED_RUN_REWARD)
            ledger.add(
                trace(
                    drawn,
                    outcome=f"error: {exc.message}",
                    reward=FAILED_RUN_REWARD,
                    signals=signals,
                    masked=eligibility.masked,
                    details={"error": exc.code, "client_saw_text": released},
                )
            )
            ledger.last_error = exc
            excluded.add(arm.name)
            last_reason = f"{arm.name} failed: {exc.code}"
            errors += 1


def decision_signals(context: Context, arm: str) -> dict[str, Any]:
    """What the caller sees of a decision's context: shared signals and the chosen arm's."""
    chosen = context.arms[context.index(arm)]
    return {
        "query": dict(context.shared.get("Q", {})),
        "historical": dict(context.shared.get("H", {})),
        **({"cut": dict(context.shared["I"])} if "I" in context.shared else {}),
        "arm": {ns: dict(values) for ns, values in chosen.namespaces.items()},
    }
