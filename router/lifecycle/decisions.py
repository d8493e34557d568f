"""Drawing a decision from a stage's policy, logging it, and settling it with a reward.

Every stage decides the same way: the policy gives a PMF over the context's actions, one is
drawn with the injected RNG (from the greedy PMF when the decider does not explore: see
``Decider``), the decision is journaled with its probability before anything
acts on it, and its reward is learned from at once and journaled (recorded once, by
idempotency key, when the request's journal is written).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from learner.anchor import DEFAULT_ANCHOR, AnchorConfig, Evidence, anchored_pmf
from learner.context import Context
from learner.sampling import greedy_pmf, sample_index
from router import tracing
from router.lifecycle.journal import ContextJson, DecisionRow, Journal, RewardRow
from router.policies import Learned, PolicyRegistry
from router.trace import DecisionTrace

IMMEDIATE = "immediate"
"""Reward source of what the router observes itself (validators, judge, failures)."""


@dataclass(frozen=True)
class Drawn:
    """A logged decision waiting for its reward."""

    decision_id: str
    request_id: str
    stage: str
    action: str
    probability: float
    pmf: Mapping[str, float]
    policy_version: int
    context: Context
    bucket: str | None = None
    """The anchor's bucket when the stage is anchored to a rule (``learner.anchor``)."""
    policy_name: str = ""
    """The policy drawn from, as its decision logs it."""


@dataclass(frozen=True)
class Rule:
    """What a rule-anchored stage's rule would do here, and the bucket its evidence is
    pooled in."""

    action: str | None
    """None: the rule has no action yet (too little evidence); the policy decides alone and
    the decision's reward still counts as evidence in ``bucket``."""
    bucket: str


class Decider:
    """Draws and settles the decisions of every stage; rows go to the request's journal.

    ``learn`` False is evaluation mode: no policy learns from the rewards. ``explore`` (by
    default: whether it learns) draws from the policy's exploration PMF; without it, each
    decision takes the policy's greedy arm (``learner.sampling.greedy_pmf``, ties drawn
    uniformly), logged with the probability it was taken with. Exploring costs reward to
    buy information; a policy that learns nothing from it only pays, so a frozen policy is
    scored by its greedy action, as offline contextual-bandit evaluation does.
    """

    def __init__(
        self,
        policies: PolicyRegistry,
        rng: np.random.Generator,
        *,
        learn: bool = True,
        explore: bool | None = None,
        anchor: AnchorConfig | None = DEFAULT_ANCHOR,
    ) -> None:
        self._policies = policies
        self._rng = rng
        self._learn = learn
        self._explore = learn if explore is None else explore
        self._anchor = anchor

    @property
    def anchor(self) -> AnchorConfig | None:
        """How rule-anchored stages weigh their evidence (None: anchoring is off)."""
        return self._anchor

    def evidence(self, stage: str, tenant: str | None) -> Evidence:
        """The evidence a rule-anchored stage has gathered (``learner.anchor``) from the
        rewards ``tenant``'s routing learns from."""
        return self._policies.evidence(stage, tenant)

    @property
    def learns(self) -> bool:
        """Whether settled rewards update the policies."""
        return self._learn

    @property
    def explores(self) -> bool:
        """Whether decisions are drawn from the exploration PMF (else greedily)."""
        return self._explore

    def draw(
        self,
        journal: Journal,
        stage: str,
        context: Context,
        rule: Rule | None = None,
        *,
        probe: tuple[str, float] | None = None,
        rng: np.random.Generator | None = None,
    ) -> Drawn:
        """Draw an action from the stage's policy and journal the decision. With a ``rule``
        (and anchoring on) the stage starts from the rule's action and leaves it only where
        its evidence says the policy's choice earns more (``learner.anchor``). With a
        ``probe`` (action, share), exploration is that action's alone: while learning it
        keeps at least that share of the probability and no other action is explored (a
        stage whose other actions observe nothing learns only through the probing one, so
        exploring them would buy nothing). The policy is the one serving the journal's
        tenant (``PolicyRegistry.serving``); the decision logs its name and update count.
        ``rng``: draw with this generator instead of the decider's (a stage whose draws must
        not shift the other stages' random stream)."""
        started_ns = tracing.started_ns()
        served = self._policies.serving(stage, journal.tenant)
        pmf = served.policy.pmf(context)
        bucket: str | None = None
        if rule is not None and self._anchor is not None:
            bucket = rule.bucket
        if rule is not None and rule.action is not None and self._anchor is not None:
            pmf = anchored_pmf(
                pmf,
                context.arm_names,
                rule.action,
                rule.bucket,
                self._policies.evidence(stage, journal.tenant),
                self._anchor,
                explore=self._explore and probe is None,
            )
        elif not self._explore or probe is not None:
            pmf = greedy_pmf(pmf)
        if self._explore and probe is not None:
            action, share = probe
            pmf = [
                (1.0 - share) * p + (share if name == action else 0.0)
                for name, p in zip(context.arm_names, pmf, strict=True)
            ]
        index = sample_index(pmf, self._rng if rng is None else rng)
        by_action = dict(zip(context.arm_names, pmf, strict=True))
        drawn = Drawn(
            decision_id=str(uuid.uuid4()),
            request_id=journal.request_id,
            stage=stage,
            action=context.arm_names[index],
            probability=pmf[index],
            pmf=by_action,
            policy_version=served.policy.updates,
            context=context,
            bucket=bucket,
            policy_name=served.name,
        )
        journal.decision(
            DecisionRow(
                decision_id=drawn.decision_id,
                stage=stage,
                context=ContextJson(context),
                arms=context.arm_names,
                chosen_arm=drawn.action,
                probability=drawn.probability,
                pmf=by_action,
                policy_name=served.name,
                policy_version=drawn.policy_version,
            )
        )
        tracing.decided(drawn, started_ns)
        return drawn

    async def settle(
        self, journal: Journal, drawn: Drawn, reward: float, source: str = IMMEDIATE
    ) -> None:
        """Learn from the decision's reward at once (unless learning is off), with the policy
        the journal's tenant learns with; journal it with the policy and the update number it
        was learned as."""
        learned: Learned | None = None
        if self._learn:
            learned = await self._policies.learn_for(
                journal.tenant, drawn.stage, drawn.context, drawn.action, drawn.probability, reward
            )
            if drawn.bucket is not None:
                self._policies.evidence(drawn.stage, journal.tenant).add(
                    drawn.bucket, drawn.action, reward
                )
        journal.reward(
            RewardRow(
                decision_id=drawn.decision_id,
                value=reward,
                source=source,
                idempotency_key=f"{drawn.decision_id}:{source}",
                policy_update=None if learned is None else learned.update,
                policy_name=None if learned is None else learned.policy_name,
            )
        )

    async def settle_with_counterfactual(
        self, journal: Journal, drawn: Drawn, reward: float, action: str, counterfactual: float
    ) -> None:
        """``settle`` the drawn action with its ``reward``, and learn the ``counterfactual``
        reward ``action`` (not drawn) would have earned, observed through the drawn one:
        weighted by the drawn action's probability, the chance this observation was made
        (inverse-propensity weighting). The two count as a pair in the decision's bucket
        (``Evidence.add_pair``). The counterfactual is not journaled: the decision's logged
        reward stays the drawn action's, as offline evaluation needs (a restart relearns it
        only through the snapshot taken after it; a replica, which does not learn, and the
        learner process, which learns from the log, never learn it; a tenant still served by
        the frozen prior does not count it towards its own policy)."""
        bucket, drawn = drawn.bucket, replace(drawn, bucket=None)
        await self.settle(journal, drawn, reward)
        if not self._learn:
            return
        await self._policies.learn_for(
            journal.tenant,
            drawn.stage,
            drawn.context,
            action,
            drawn.probability,
            counterfactual,
            logged=False,
        )
        if bucket is not None:
            self._policies.evidence(drawn.stage, journal.tenant).add_pair(
                bucket, drawn.action, reward, action, counterfactual
            )


def trace(
    drawn: Drawn,
    *,
    outcome: str,
    reward: float | None,
    signals: Mapping[str, Any] | None = None,
    masked: Mapping[str, str] | None = None,
    cost_usd: float | None = None,
    latency_ms: float | None = None,
    details: Mapping[str, Any] | None = None,
) -> DecisionTrace:
    """The caller-facing record of a settled decision."""
    return DecisionTrace(
        decision_id=drawn.decision_id,
        stage=drawn.stage,
        arm=drawn.action,
        probability=drawn.probability,
        pmf=dict(drawn.pmf),
        policy_version=drawn.policy_version,
        signals=dict(signals or {}),
        masked=dict(masked or {}),
        outcome=outcome,
        reward=reward,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        details=dict(details or {}),
        policy=drawn.policy_name,
    )
