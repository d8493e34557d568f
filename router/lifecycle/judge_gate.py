"""The judge gate: whether a verdict on an answer is worth the judge's price (``judge: learned``).

Paying for the judge is a decision like any other. After the validators and before the
judge, the gate (stage ``judge``, actions ``ask`` and ``skip``) asks the judge about the
answer or accepts it unjudged. Its context: the validators' result, the answering arm, the
query signals, the kNN history's evidence for that arm (its neighbours' rewards: mean,
count, spread) and the judge's price relative to the answering arm's (``gate_features``).

**Rule.** The gate starts from the configured rule (``StageOptions.judge_rule``:
``on_doubt`` asks when no validator could check the content, ``always`` asks) and leaves it
only where its evidence says the other action earns more, as the escalation stage does
(``learner.anchor``). Its evidence is pooled per bucket: how far the validators got, the
answering arm, and how good that arm's answers to similar queries were (``history_band``).

**Reward.** A skipped answer has no verdict: nothing says what skipping earned on it. An
asked one says what both actions earn. Asking earned the request's final utility: the
delivered answer's quality for everything spent on the answer, the judge and the
escalations the verdict led to. Skipping would have earned the first answer's utility as
the judge graded it, for the answer's cost alone. The ask decision is rewarded (and
journaled) with the first; the second is learned as the ``skip`` action's counterfactual,
weighted by the probability of asking (``Decider.settle_with_counterfactual``:
inverse-propensity weighting of the requests that were asked), and the two count as a pair
in the bucket's evidence: the anchor compares ask and skip on their paired differences, far
steadier than either reward (both share the request's luck), so a judge price that is small
next to the rewards' spread can still be seen to outweigh what the verdicts repair. Asking
thus earns more exactly where the verdicts it buys let escalation repair wrong answers for
less than the judge costs. A skipped decision is journaled without a reward (there is none
to observe). While learning, ``ask`` keeps at least ``MIN_ASK`` of the probability, so
contexts the gate skips still get verdicts; ``skip`` is never explored, since a skipped
answer teaches nothing (its value is learned from the asked ones alone).

What the reward does not price: a verdict is also the other stages' learning signal (an
unjudged answer teaches the pre-generation policy only what the validators saw). Without
escalation the gate learns to skip everywhere, as it should for serving, but the other
stages then learn from validators alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from features.historical import ArmHistory
from features.verdicts import ValidationSummary
from learner.reward import RewardWeights, shape_reward
from router.contexts import judge_gate_context
from router.lifecycle.assessment import Assessment
from router.lifecycle.decisions import Drawn, Rule, trace
from router.lifecycle.kit import StageKit
from router.lifecycle.stages import JUDGE_GATE, JudgeRule
from router.lifecycle.state import Ledger, Prepared
from router.pool import Arm
from router.providers import Completion
from router.trace import DecisionTrace

ASK = "ask"
SKIP = "skip"
ACTIONS = (ASK, SKIP)

MIN_ASK = 0.05
"""While learning, ``ask`` keeps at least this probability where the gate skips; ``skip`` is
never explored (a skipped answer teaches nothing: skipping is learned from asked ones)."""

MIN_NEIGHBOURS = 3
"""Fewer rewarded neighbours of an arm than this tell nothing about its answers here."""


def blended_usd_per_mtok(arm: Arm) -> float:
    """An arm's list price per million tokens, output weighted three to one."""
    return (arm.input_usd_per_mtok + 3 * arm.output_usd_per_mtok) / 4


def estimated_quality(mean_reward: float, weights: RewardWeights) -> float:
    """The quality a mean reward implies with the reward's affine map inverted and the cost
    and latency penalties left in (so a lower bound of it), in [0, 1]."""
    floor = weights.floor
    return min(1.0, max(0.0, mean_reward * (1.0 + floor) - floor))


def history_band(history: ArmHistory | None, weights: RewardWeights) -> str:
    """How good the arm's answers to similar queries were: ``unknown`` (fewer than
    ``MIN_NEIGHBOURS`` rewarded neighbours), ``high`` (estimated quality at least 0.9),
    ``mid`` (at least 0.6) or ``low``."""
    if history is None or history.count < MIN_NEIGHBOURS:
        return "unknown"
    quality = estimated_quality(history.mean_reward, weights)
    if quality >= 0.9:
        return "high"
    return "mid" if quality >= 0.6 else "low"


def gate_features(
    validation: ValidationSummary,
    answered_by: Arm,
    judge: Arm | None,
    history: ArmHistory | None,
    weights: RewardWeights,
) -> dict[str, float | str]:
    """The gate's shared namespace ``G``: the validators' reach, the answering arm, its
    neighbours' evidence and (when the judge's price is known) the judge's log price ratio
    to the answering arm."""
    values: dict[str, float | str] = {
        "checked": 1.0 if validation.conclusive else 0.0,
        "validators": float(len(validation.applied)),
        "arm": answered_by.name,
    }
    if judge is not None:
        ratio = (blended_usd_per_mtok(judge) + 1e-6) / (blended_usd_per_mtok(answered_by) + 1e-6)
        values["log_judge_price"] = round(math.log(ratio), 4)
    if history is None:
        values["unseen"] = 1.0
    else:
        values["est_quality"] = round(estimated_quality(history.mean_reward, weights), 4)
        values["log_count"] = round(math.log1p(history.count), 4)
        values["spread"] = round(history.spread, 4)
    return values


def gate_rule(rule: JudgeRule, validation: ValidationSummary, band: str, answered_by: str) -> Rule:
    """Where the gate starts: ask always, or (``on_doubt``) when no validator could check
    the content; evidence pooled per validators' reach, history band and answering arm."""
    ask = rule == "always" or not validation.conclusive
    reach = "checked" if validation.conclusive else "unchecked"
    return Rule(ASK if ask else SKIP, f"{reach}|{band}|{answered_by}")


def asked_rewards(
    weights: RewardWeights,
    *,
    first_quality: float,
    final_quality: float,
    answer_cost_usd: float,
    spent_after_usd: float,
    answer_latency_ms: float,
    total_latency_ms: float,
) -> tuple[float, float]:
    """What asking earned and what skipping would have earned on an asked request (module
    docstring): the delivered answer for everything spent, and the first answer as judged
    for its own cost and latency."""
    ask = shape_reward(final_quality, answer_cost_usd + spent_after_usd, total_latency_ms, weights)
    skip = shape_reward(first_quality, answer_cost_usd, answer_latency_ms, weights)
    return ask, skip


@dataclass
class JudgeGate:
    """The gate of one request's first answer: ``decide`` is ``assess``'s gate, ``settle``
    rewards it once the request's escalations are done."""

    kit: StageKit
    prep: Prepared
    ledger: Ledger
    answer: Completion
    rng: np.random.Generator | None = None
    """The gate's own draws (None: the kit's), so that turning the gate on leaves every
    other stage's random stream as it was: what it changes is then its own doing."""
    drawn: Drawn | None = None
    rule: Rule | None = None
    decided_at: float = 0.0
    signals: dict[str, object] = field(default_factory=dict)

    def decide(self, validation: ValidationSummary) -> bool:
        """Draw ask or skip for an answer the validators did not fail; its trace waits in the
        ledger (at the place it was made) for the reward."""
        pool = self.kit.pool
        arm = pool.arm(self.answer.arm)
        history = self.prep.history.arms.get(arm.name)
        weights = self.prep.request.weights
        features = gate_features(validation, arm, pool.judge, history, weights)
        context = judge_gate_context(self.prep.query, features, ACTIONS)
        self.rule = gate_rule(
            self.prep.request.stages.judge_rule,
            validation,
            history_band(history, weights),
            arm.name,
        )
        self.drawn = self.kit.decider.draw(
            self.prep.journal,
            JUDGE_GATE,
            context,
            self.rule,
            probe=(ASK, MIN_ASK),
            rng=self.rng,
        )
        self.decided_at = self.kit.clock()
        self.signals = {"gate": features}
        self.ledger.add(self._trace("deciding", None, None, {}))
        return self.drawn.action == ASK

    async def settle(self, first: Assessment, final: Assessment) -> None:
        """Reward the gate (module docstring): an asked decision with the request's final
        utility, and the skip action with the counterfactual its verdict reveals; a skipped
        decision with nothing."""
        drawn = self.drawn
        if drawn is None:
            return
        index = next(
            i for i, t in enumerate(self.ledger.traces) if t.decision_id == drawn.decision_id
        )
        if drawn.action == SKIP:
            self.ledger.traces[index] = self._trace("skipped; accepted unjudged", None, None, {})
            return
        started = self.prep.started
        spent_after = first.judge_cost_usd + sum(
            t.cost_usd or 0.0 for t in self.ledger.traces[index + 1 :]
        )
        ask, skip = asked_rewards(
            self.prep.request.weights,
            first_quality=first.quality,
            final_quality=final.quality,
            answer_cost_usd=self.answer.cost_usd,
            spent_after_usd=spent_after,
            answer_latency_ms=(self.decided_at - started) * 1000.0,
            total_latency_ms=(self.kit.clock() - started) * 1000.0,
        )
        details: dict[str, object] = {"spent_after_usd": spent_after}
        if first.verdict is None:
            await self.kit.decider.settle(self.prep.journal, drawn, ask)
            outcome = "asked; the judge gave no verdict"
        else:
            await self.kit.decider.settle_with_counterfactual(
                self.prep.journal, drawn, ask, SKIP, skip
            )
            outcome = "asked the judge"
            details["skip_reward"] = skip
        self.ledger.traces[index] = self._trace(outcome, ask, first.judge_cost_usd, details)

    def _trace(
        self,
        outcome: str,
        reward: float | None,
        cost_usd: float | None,
        details: dict[str, object],
    ) -> DecisionTrace:
        assert self.drawn is not None
        assert self.rule is not None
        return trace(
            self.drawn,
            outcome=outcome,
            reward=reward,
            signals=self.signals,
            cost_usd=cost_usd,
            details={"rule": self.rule.action, "bucket": self.rule.bucket, **details},
        )
