"""Per-arm estimates of a stage's deployed policy over its recent decisions, overall and per
task category or hint: the answer to "what did it learn?" (``learner.estimates`` computes
them; this module reads the decisions from the store and groups their contexts).

A decision belongs to the group of its query's strongest task category (``category:code``,
from the ``Q^cat_*`` signals) and to one group per hint the request carried
(``hint:task=summarise``, from ``Q^hint_*``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from learner.context import Context
from learner.estimates import ArmEstimate, LoggedOutcome, Scorer, arm_estimates
from learner.vw_policy import ArmScores
from store import rewards as reward_log
from store.database import Database

SCORE_CHUNK = 20
"""Decisions scored between two yields to the event loop."""
CATEGORY_PREFIX = "cat_"
HINT_PREFIX = "hint_"


@dataclass(frozen=True)
class GroupEstimates:
    """The estimates over the decisions of one group (``category:NAME`` or ``hint:K=V``)."""

    group: str
    decisions: int
    arms: tuple[ArmEstimate, ...]


@dataclass(frozen=True)
class StageEstimates:
    """A stage's estimates over its last ``window`` decisions (``decisions`` of them found)."""

    stage: str
    window: int
    decisions: int
    arms: tuple[ArmEstimate, ...]
    groups: tuple[GroupEstimates, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "decisions": self.decisions,
            "arms": [arm_json(a) for a in self.arms],
            "groups": [
                {"group": g.group, "decisions": g.decisions, "arms": [arm_json(a) for a in g.arms]}
                for g in self.groups
            ],
        }


def arm_json(estimate: ArmEstimate) -> dict[str, Any]:
    """An estimate as JSON, its rates rounded to 4 digits."""
    values = asdict(estimate)
    for key in ("share", "probability", "estimated_reward", "observed_reward"):
        if values[key] is not None:
            values[key] = round(values[key], 4)
    return values


def context_groups(context: Context) -> list[str]:
    """The groups a decision's context belongs to: its strongest task category (none when
    every category scores 0) and each hint."""
    query: Mapping[str, float | str] = context.shared.get("Q", {})
    groups: list[str] = []
    categories = {
        k[len(CATEGORY_PREFIX) :]: v
        for k, v in query.items()
        if k.startswith(CATEGORY_PREFIX) and not isinstance(v, str)
    }
    if categories:
        name, score = max(categories.items(), key=lambda kv: (kv[1], kv[0]))
        if score > 0:
            groups.append(f"category:{name}")
    for key in sorted(query):
        if key.startswith(HINT_PREFIX):
            groups.append(f"hint:{key[len(HINT_PREFIX) :]}={query[key]}")
    return groups


def estimate_outcomes(
    stage: str,
    window: int,
    scorer: Scorer,
    outcomes: Sequence[LoggedOutcome],
    arms: Sequence[str] = (),
) -> StageEstimates:
    """Estimates overall and per group (groups with most decisions first); each context is
    scored once."""
    scorer = _Memo(scorer)
    by_group: dict[str, list[LoggedOutcome]] = {}
    for outcome in outcomes:
        for group in context_groups(outcome.context):
            by_group.setdefault(group, []).append(outcome)
    ordered = sorted(by_group.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return StageEstimates(
        stage=stage,
        window=window,
        decisions=len(outcomes),
        arms=tuple(arm_estimates(scorer, outcomes, arms=arms)),
        groups=tuple(
            GroupEstimates(
                group=group,
                decisions=len(members),
                arms=tuple(arm_estimates(scorer, members, arms=arms)),
            )
            for group, members in ordered
        ),
    )


class _Memo:
    """A scorer that scores each context object once (a context is in several groups)."""

    def __init__(self, scorer: Scorer) -> None:
        self._scorer = scorer
        self._scores: dict[int, tuple[Context, ArmScores]] = {}

    def scores(self, context: Context) -> ArmScores:
        known = self._scores.get(id(context))
        if known is not None and known[0] is context:
            return known[1]
        scores = self._scorer.scores(context)
        self._scores[id(context)] = (context, scores)
        return scores


async def stage_estimates(
    database: Database,
    stage: str,
    scorer: Scorer,
    *,
    window: int,
    tenant: str | None = None,
    arms: Sequence[str] = (),
) -> StageEstimates:
    """``scorer``'s estimates on the last ``window`` decisions of ``stage`` (of ``tenant``
    when given). Decisions whose logged context cannot be read (written by another version)
    are left out.

    Scoring runs on the event loop (a VW workspace holds the GIL: a thread would not free
    it), about 0.3 ms per decision of a dozen arms; it yields to the loop every
    ``SCORE_CHUNK`` decisions so that requests being routed meanwhile are not held up."""
    async with database.connection() as conn:
        recent = await reward_log.recent_outcomes(conn, stage=stage, window=window, tenant=tenant)
    outcomes: list[LoggedOutcome] = []
    for row in recent:
        try:
            context = Context.from_json(row.context)
        except (KeyError, TypeError, ValueError):
            continue
        outcomes.append(LoggedOutcome(context, row.chosen_arm, row.reward))
    memo = _Memo(scorer)
    for index, outcome in enumerate(outcomes, start=1):
        memo.scores(outcome.context)
        if index % SCORE_CHUNK == 0:
            await asyncio.sleep(0)
    return estimate_outcomes(stage, window, memo, outcomes, arms)
