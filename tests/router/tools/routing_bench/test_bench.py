"""A whole benchmark on a small synthetic matrix, on the test database: real router, real VW,
real pgvector, real validators; seconds, not minutes."""

import json
from pathlib import Path

import pytest

from features.errors import ConfigError
from router.tools.routing_bench.learned import VARIANTS
from router.tools.routing_bench.markdown import markdown
from router.tools.routing_bench.report import LEARNED_PREFIX, build_report, write_report
from router.tools.routing_bench.run import (
    PROMPTED_CASCADE,
    BenchOptions,
    plan_bench,
    run_bench_async,
)
from router.tools.routing_bench.tables import build_matrix
from store.database import Database
from tests.router.tools.routing_bench.synthetic import synthetic_matrix, synthetic_rows

STABLE_KEYS = {
    "dataset",
    "split",
    "n_prompts",
    "judge_accuracy",
    "seeds",
    "reference",
    "policies",
    "aiq",
}
POLICY_KEYS = {
    "name",
    "kind",
    "lambda_cost",
    "quality",
    "cost_usd",
    "quality_pct_of_best",
    "cost_pct_of_best",
}


async def test_bench_runs_learned_variants_and_baselines(
    database: Database, tmp_path: Path
) -> None:
    matrix = synthetic_matrix(50)
    options = BenchOptions(
        variants=("pre", "escalation", "full"), lambdas=(0.3,), pre_lambdas=(0.3,), seeds=(0,)
    )
    routed: list[int] = []
    result = await run_bench_async(matrix, options, database, on_progress=routed.append)
    assert sum(routed) == 3 * (35 + 7 + 2 * 15)  # train, its held-out end, test twice
    assert len(result.learned) == 3
    for run in result.learned:
        assert len(run.train.rows) == 35
        assert len(run.frozen.rows) == 15
        assert run.train.decisions >= 35
        assert (run.frozen.column >= 0).all()  # every request delivered a recorded answer

    report = build_report(result)
    assert set(report) >= STABLE_KEYS
    assert report["dataset"] == "synthetic"
    assert report["n_prompts"] == 15
    assert report["reference"]["best_single"]["model"] == "strong"
    assert report["reference"]["oracle"]["quality"] == 1.0
    names = {p["name"] for p in report["policies"]}
    assert {"oracle", "cheap", "mid", "strong", "random", "task-level", "kNN", "cascade"} <= names
    by_name = {p["name"]: p for p in report["policies"]}
    plain, prompted = by_name["cascade"], by_name[PROMPTED_CASCADE]
    assert prompted["quality"] == plain["quality"]
    assert prompted["cost_usd"] > plain["cost_usd"]  # the rejected answer is billed
    assert prompted["cheap_model"] == plain["cheap_model"]
    learned = [p for p in report["policies"] if p["kind"] == "learned"]
    assert {p["name"] for p in learned} == {f"{LEARNED_PREFIX}{v}" for v in options.variants}
    for policy in report["policies"]:
        assert set(policy) >= POLICY_KEYS
        assert 0.0 <= policy["quality"] <= 1.0
        assert policy["cost_usd"] >= 0.0
    assert all(p["kind"] == "baseline" for p in report["policies"] if p["name"] == "oracle")
    assert f"{LEARNED_PREFIX}escalation" in report["aiq"]
    assert "strong" in report["aiq"]
    assert "flipped with probability" in report["judge_simulation"]["verdict"]
    assert report["targets"]
    assert report["throughput"]["decisions_per_s"] > 0

    json_path, md_path = write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["policies"] == json.loads(
        json.dumps(report["policies"])
    )
    text = md_path.read_text()
    assert text == markdown(report)
    assert "| cascade | baseline |" in text
    assert "Judge simulation" in text


async def test_plots_are_written(database: Database, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from router.tools.routing_bench.plots import write_plots

    matrix = synthetic_matrix(30)
    options = BenchOptions(variants=("pre",), pre_lambdas=(0.1, 0.6), seeds=(1,))
    result = await run_bench_async(matrix, options, database)
    report = build_report(result)
    for path in write_plots(result, report, tmp_path):
        assert path.read_bytes().startswith(b"\x89PNG")


def test_every_learned_variant_has_its_own_colour() -> None:
    pytest.importorskip("matplotlib")
    from router.tools.routing_bench.plots import LEARNED_COLOURS

    assert list(LEARNED_COLOURS) == list(VARIANTS)
    assert len(set(LEARNED_COLOURS.values())) == len(VARIANTS)


def test_pre_runs_at_its_own_points_and_the_judged_variants_at_theirs() -> None:
    matrix = synthetic_matrix(40)
    options = BenchOptions(
        variants=("pre", "escalation"),
        lambdas=(0.1, 2.0),
        pre_lambdas=(2.0, 5.0, 5.0),
        seeds=(0, 1),
    )
    plan = plan_bench(matrix, options)
    assert plan.points.for_variant("pre") == (2.0, 5.0)  # each once
    assert plan.points.for_variant("escalation") == (0.1, 2.0)
    assert not plan.points.chosen_on_train
    assert len(plan.specs) == 2 * 2 + 2 * 2
    assert {s.lambda_cost for s in plan.specs if s.variant == "escalation"} == {0.1, 2.0}
    chosen = plan_bench(matrix, BenchOptions(variants=("pre", "escalation"), seeds=(0,)))
    assert chosen.points.chosen_on_train
    assert len(chosen.points.pre) == 2
    assert len(chosen.points.judged) == 2
    with pytest.raises(ValueError, match="variant escalation needs at least one lambda_cost"):
        BenchOptions(variants=("pre", "escalation"), lambdas=())
    with pytest.raises(ValueError, match=r"variant pre needs .* \(pre_lambdas\)"):
        BenchOptions(pre_lambdas=())
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="lambda_cost must be >= 0"):
            BenchOptions(pre_lambdas=(bad,))


async def test_no_judged_run_where_the_judge_outprices_what_it_could_save(
    database: Database, tmp_path: Path
) -> None:
    """Judged by the strong model itself, the cheap answer and its verdict cost as much as
    the strong answer: a judged run could only be dearer than the best model, so only
    `pre` runs, and the report says why."""
    matrix = build_matrix(
        synthetic_rows(40), name="synthetic", judge_model="strong", source="synthetic"
    )
    options = BenchOptions(variants=("pre", "escalation", "chain"), seeds=(0,))
    plan = plan_bench(matrix, options)
    assert plan.points.judged == ()
    assert plan.points.judged_skipped is not None
    assert "strong" in plan.points.judged_skipped
    assert {spec.variant for spec in plan.specs} == {"pre"}
    result = await run_bench_async(matrix, options, database)
    report = build_report(result)
    assert report["settings"]["lambdas"] == []
    assert {p["name"] for p in report["policies"] if p["kind"] == "learned"} == {
        f"{LEARNED_PREFIX}pre"
    }
    assert "Judged variants not run: the cheapest model's answer" in markdown(report)
    given = plan_bench(matrix, BenchOptions(variants=("pre", "chain"), seeds=(0,), lambdas=(0.3,)))
    assert given.points.judged == (0.3,)  # points given are run as given
    doubting = plan_bench(matrix, BenchOptions(variants=("pre", "chain"), judge="on_doubt"))
    assert doubting.points.judged  # answers a validator checked are not judged: it may pay
    with pytest.raises(ConfigError, match="nothing to run"):
        plan_bench(matrix, BenchOptions(variants=("chain",), seeds=(0,)))
