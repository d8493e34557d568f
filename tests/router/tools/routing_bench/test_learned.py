"""The learned run's protocol: learn over train, score test with learning off, then learn on."""

from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from features.embedding import HashingEmbedder
from features.verdicts import ValidationSummary
from learner.context import ArmFeatures, Context
from router.health import HealthTracker
from router.history_index import HistoryIndex
from router.lifecycle.assessment import Assessment
from router.lifecycle.decisions import Decider
from router.lifecycle.escalation import verdict_matters
from router.lifecycle.journal import Journal
from router.lifecycle.kit import StageKit
from router.policies import Served
from router.pool import demo_pool
from router.tools.routing_bench.learned import (
    HOLDOUT_FRACTION,
    TENANT,
    VARIANTS,
    LearnedRunner,
    LearnedSpec,
    PassResult,
    RunSettings,
)
from store import decisions as decision_log
from store import embeddings as embedding_store
from store.database import Database
from tests.router.tools.routing_bench.synthetic import synthetic_matrix


def test_frozen_pass_serves_pre_only_variants_without_the_judge() -> None:
    assert VARIANTS["pre"].stages("always", learning=True).judge == "always"
    assert VARIANTS["pre"].stages("always", learning=False).judge == "never"
    assert VARIANTS["escalation"].stages("always", learning=False).judge == "always"
    assert VARIANTS["full"].stages("on_doubt", learning=False).components
    assert VARIANTS["escalation"].stages("always", learning=False).max_escalations == 1
    assert VARIANTS["chain"].stages("always", learning=False).max_escalations == 2


async def test_frozen_pass_neither_learns_nor_remembers(database: Database) -> None:
    matrix = synthetic_matrix(50)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong",))
    runner = LearnedRunner(matrix, database, settings, direct_writes=True)  # reads every pass
    train, test = matrix.rows("train"), matrix.rows("test")
    run = await runner.run(LearnedSpec("pre", 0.3, seed=0), list(train), list(test))
    assert run.frozen.rows.tolist() == test.tolist()
    assert run.decisions_per_s > 0
    async with database.connection() as conn:
        pre = await decision_log.list_decisions(conn, stage="pre", tenant=TENANT)
        stored = await embedding_store.nearest(
            conn, HashingEmbedder().embed(matrix.prompts[0].text), k=200, tenant=TENANT
        )
    versions = [d.policy_version for d in pre]
    # train: 28 learned, its last 7 scored frozen first (holdout), then learned too
    assert run.holdout.rows.tolist() == list(train[28:])
    assert run.train.rows.tolist() == list(train)
    assert versions[:28] == list(range(28))
    assert versions[28:35] == [28] * 7  # holdout: frozen as the first 28 left it
    assert versions[35:42] == list(range(28, 35))
    assert versions[42:57] == [35] * 15  # frozen: the policy stays as train left it
    assert versions[57:] == list(range(35, 50))  # online: learning again
    assert len(stored) == 35 + 15  # frozen requests are never neighbours
    # frozen: the greedy arm (ties shared), taken as logged
    for decision in [*pre[28:35], *pre[42:57]]:
        taken = {p for p in decision.pmf.values() if p > 0}
        assert taken == {decision.probability}
        assert decision.pmf[decision.chosen_arm] == max(decision.pmf.values())
    exploring = [d for d in pre[57:] if len({p for p in d.pmf.values() if p > 0}) > 1]
    assert exploring, "learning again, the policy explores"
    assert np.isfinite(run.online.cost_usd).all()


async def test_the_task_hint_reaches_every_logged_context(database: Database) -> None:
    matrix = synthetic_matrix(20)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong",), task_hint=True)
    runner = LearnedRunner(matrix, database, settings, direct_writes=True)  # reads every pass
    train, test = matrix.rows("train"), matrix.rows("test")
    await runner.run(LearnedSpec("pre", 0.3, seed=0), list(train), list(test))
    async with database.connection() as conn:
        pre = await decision_log.list_decisions(conn, stage="pre", tenant=TENANT)
    hinted = [d.context["shared"]["Q"]["hint_task"] for d in pre]
    held = train[len(train) - int(len(train) * HOLDOUT_FRACTION) :]
    rows = [*train[: len(train) - len(held)], *held, *held, *test, *test]  # every pass, in order
    assert hinted == [matrix.prompts[row].task for row in rows]


class _Policy:
    updates = 0

    def pmf(self, context: Context) -> list[float]:
        return [0.2, 0.5, 0.3]


class _Policies:
    def serving(self, stage: str, tenant: str | None = None) -> Served:
        return Served(_Policy(), stage, True)  # type: ignore[arg-type]


def _draws(decider: Decider, n: int) -> list[str]:
    context = Context(
        shared={"Q": {"x": 1.0}},
        arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in ("a", "b", "c")),
    )
    journal = Journal("request", "bench", None)
    return [decider.draw(journal, "pre", context).action for _ in range(n)]


def _same_pass(a: PassResult, b: PassResult) -> bool:
    arrays = ("rows", "column", "quality", "cost_usd", "escalated", "cut")
    same = all(np.array_equal(getattr(a, name), getattr(b, name)) for name in arrays)
    return same and (a.decisions, a.judge_calls) == (b.decisions, b.judge_calls)


@pytest.mark.parametrize("variant", ["pre", "chain", "full"])
async def test_batched_writes_route_exactly_as_the_router_writing_every_request(
    database: Database, variant: str
) -> None:
    """The bench's store plumbing (a request's rows in one transaction, the passes with
    learning off not written) changes no result: every pass, request by request, is what
    the router gives when it writes every request's rows itself."""
    matrix = synthetic_matrix(60)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong", "mid"))
    train, test = list(matrix.rows("train")), list(matrix.rows("test"))
    spec = LearnedSpec(variant, 0.3, seed=1)

    direct = await LearnedRunner(matrix, database, settings, direct_writes=True).run(
        spec, train, test
    )
    batched = await LearnedRunner(matrix, database, settings).run(spec, train, test)
    assert direct.train.escalated.any() or variant == "pre"  # the comparison covers escalation
    for before, after in zip(direct.passes, batched.passes, strict=True):
        assert _same_pass(before, after)
    async with database.connection() as conn:
        pre = await decision_log.list_decisions(conn, stage="pre", tenant=TENANT)
    assert len(pre) == len(train) + len(test)  # the learning passes' rows only


@pytest.mark.parametrize("variant", ["pre", "chain"])
async def test_a_run_keeps_simulated_time_and_repeats_exactly(
    database: Database, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run reads no real clock for its decisions (the health windows and the neighbours'
    ages run on its ``StreamClock``), so running a seed again gives every pass again,
    request by request, whatever the machine's speed; its history look-ups are answered by
    the in-process index, as in the service, and find neighbours."""

    class NoWallClock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            raise AssertionError("the bench read the wall clock")

    monkeypatch.setattr("router.routing.datetime", NoWallClock)
    monkeypatch.setattr("router.history_index.datetime", NoWallClock)
    found: list[int] = []
    look_up = HistoryIndex.tenant_and_user_outcomes

    def counted(self: HistoryIndex, *args: Any, **kwargs: Any) -> Any:
        rows, user_rows = look_up(self, *args, **kwargs)
        found.append(len(rows))
        return rows, user_rows

    monkeypatch.setattr(HistoryIndex, "tenant_and_user_outcomes", counted)
    matrix = synthetic_matrix(60)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong", "mid"))
    train, test = list(matrix.rows("train")), list(matrix.rows("test"))
    spec = LearnedSpec(variant, 0.3, seed=2)
    runner = LearnedRunner(matrix, database, settings)
    first = await runner.run(spec, train, test)
    assert len(found) >= len(train) + 2 * len(test)  # every pass asked the index
    assert max(found) > 0  # and it answered with neighbours
    again = await runner.run(spec, train, test)
    for before, after in zip(first.passes, again.passes, strict=True):
        assert _same_pass(before, after)


def test_a_decider_that_does_not_learn_acts_greedily_unless_told_to_explore() -> None:
    policies: Any = _Policies()
    frozen = Decider(policies, np.random.default_rng(0), learn=False)
    assert not frozen.explores
    assert set(_draws(frozen, 50)) == {"b"}
    exploring = Decider(policies, np.random.default_rng(0), learn=False, explore=True)
    assert set(_draws(exploring, 200)) == {"a", "b", "c"}
    assert Decider(policies, np.random.default_rng(0)).explores


def test_escalated_answers_are_judged_only_when_the_verdict_can_matter() -> None:
    def kit(learn: bool) -> StageKit:
        rng = np.random.default_rng(0)
        policies: Any = _Policies()
        return StageKit(
            pool=demo_pool(),
            providers={},
            health=HealthTracker(demo_pool().names),
            decider=Decider(policies, rng, learn=learn),
            rng=rng,
        )

    def first(quality: float) -> Assessment:
        return Assessment(validation=ValidationSummary(()), verdict=None, quality=quality)

    assert verdict_matters(kit(learn=True), first(0.0))  # the escalation's reward
    assert verdict_matters(kit(learn=False), first(1.0))  # which answer is kept
    assert not verdict_matters(kit(learn=False), first(0.0))  # the new one, whatever


def test_the_gated_variant_lets_the_judge_gate_start_from_the_runs_judge_mode() -> None:
    gated = VARIANTS["escalation-gated"]
    for learning in (True, False):
        stages = gated.stages("always", learning=learning)
        assert (stages.judge, stages.judge_rule) == ("learned", "always")
    assert gated.stages("on_doubt", learning=False).judge_rule == "on_doubt"
    assert VARIANTS["escalation"].stages("always", learning=False).judge == "always"


async def test_a_gated_run_logs_one_gate_decision_per_answer_and_counts_verdicts(
    database: Database,
) -> None:
    matrix = synthetic_matrix(40)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong",))
    runner = LearnedRunner(matrix, database, settings, direct_writes=True)  # reads every pass
    train, test = matrix.rows("train"), matrix.rows("test")
    run = await runner.run(LearnedSpec("escalation-gated", 0.3, seed=0), list(train), list(test))
    async with database.connection() as conn:
        gates = await decision_log.list_decisions(conn, stage="judge", tenant=TENANT)
        pre = await decision_log.list_decisions(conn, stage="pre", tenant=TENANT)
    assert len(gates) == len(pre)  # every first answer passed the (absent) validators
    assert {d.chosen_arm for d in gates} <= {"ask", "skip"}
    # In logged order: the train stream's first part (learning), its held-out end (frozen),
    # that end again (learning), the test split (frozen), the test split again (learning).
    held = int(len(train) * HOLDOUT_FRACTION)
    fit = len(train) - held
    passes = [fit, held, held, len(test), len(test)]
    assert len(gates) == sum(passes)
    starts = np.cumsum([0, *passes])
    asked = [
        sum(d.chosen_arm == "ask" for d in gates[start:end]) for start, end in pairwise(starts)
    ]
    # A learning pass judges every asked first answer, and every escalated one (rule: always).
    assert run.train.judge_calls == asked[0] + asked[2] + int(run.train.escalated.sum())
    assert run.online.judge_calls == asked[4] + int(run.online.escalated.sum())
    # A frozen pass judges every asked first answer, and an escalated one only when it matters.
    for result, count in ((run.holdout, asked[1]), (run.frozen, asked[3])):
        assert count <= result.judge_calls <= count + int(result.escalated.sum())
    assert run.frozen.judge_calls_per_request == run.frozen.judge_calls / len(test)


async def _first_steps(database: Database, variant: str) -> list[str]:
    """The escalation actions a chain's steps took where both the strongest target and a
    cheaper one were open to them (every pass: the rule leads while learning, too)."""
    matrix = synthetic_matrix(60)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong", "mid", "cheap"))
    runner = LearnedRunner(matrix, database, settings, direct_writes=True)  # reads every pass
    train, test = matrix.rows("train"), matrix.rows("test")
    await runner.run(LearnedSpec(variant, 0.3, seed=0), list(train), list(test))
    async with database.connection() as conn:
        posts = await decision_log.list_decisions(conn, stage="post", tenant=TENANT)
    return [
        d.chosen_arm
        for d in posts
        if d.chosen_arm.startswith("escalate:") and "escalate:strong" in d.pmf and len(d.pmf) > 2
    ]


async def test_a_chain_climbs_through_a_cheaper_target_first(database: Database) -> None:
    """``chain`` keeps the strongest target for its second step; ``chain-strongest`` (what
    the ladder replaced) goes there at once."""
    assert VARIANTS["chain"].stages("always", learning=False).escalation_ladder
    assert not VARIANTS["chain-strongest"].stages("always", learning=False).escalation_ladder
    ladder = await _first_steps(database, "chain")
    direct = await _first_steps(database, "chain-strongest")
    assert ladder
    assert ladder.count("escalate:strong") < len(ladder) / 4
    assert direct
    assert direct.count("escalate:strong") > len(direct) * 3 / 4


async def test_a_whole_front_chain_escalates_to_front_models_beyond_the_configured_targets(
    database: Database,
) -> None:
    """``chain-front`` takes its rungs from the train Pareto front (here every model: each is
    right more often at a higher price), not from the run's targets, which name only the
    strongest; ``chain-reasons`` sends no rejected answer along."""
    front = VARIANTS["chain-front"]
    assert front.whole_front
    assert front.max_escalations == 3
    assert VARIANTS["chain-reasons"].stages("always", learning=False).escalation_context == (
        "reasons"
    )
    matrix = synthetic_matrix(60)
    settings = RunSettings(cost_ref_usd=0.001, escalation_targets=("strong",))
    runner = LearnedRunner(matrix, database, settings)
    train, test = matrix.rows("train"), matrix.rows("test")
    for variant in ("chain", "chain-front"):
        await runner.run(LearnedSpec(variant, 0.3, seed=0), list(train), list(test))
        async with database.connection() as conn:
            posts = await decision_log.list_decisions(conn, stage="post", tenant=TENANT)
        opened = {action for d in posts for action in d.pmf}
        if variant == "chain":
            assert "escalate:mid" not in opened
        else:
            assert "escalate:mid" in opened
            assert any(d.chosen_arm == "escalate:mid" for d in posts)
