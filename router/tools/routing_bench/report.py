"""The benchmark's report: ``report.json`` (stable keys) and a short Markdown table.

Numbers are medians over seeds. Learned policies are scored on the test split with learning
off after the train stream (the main figure) and, as a second figure, learning on through the
test split (``online``). Every report states what the judge simulation assumes.

The operating point a target is checked at is chosen on train, never on test: per learned
variant and lambda_cost, the quality and cost of the held-out end of the train stream,
scored with learning off before it was learned from (``LearnedRun.holdout``: as the test
split is scored); the cheapest one whose quality there reaches the best single model's on
the same prompts is taken (else the best-quality one). The second half of the train stream
(learning, exploring) is reported beside it as ``train_tail``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.tools.routing_bench.baselines import oracle_columns
from router.tools.routing_bench.learned import VARIANTS, LearnedRun, PassResult
from router.tools.routing_bench.markdown import markdown
from router.tools.routing_bench.matrix import IndexArray, RoutingMatrix
from router.tools.routing_bench.metrics import Point, aiq, cumulative_regret, pct
from router.tools.routing_bench.providers import describe
from router.tools.routing_bench.run import PROMPTED_CASCADE, BenchResult

LEARNED_PREFIX = "signalroute/"
LEARNED_CURVE = "signalroute"
"""Every learned point together: one router whose stages are chosen per route profile."""
TARGET_QUALITY_PCT = 100.0
TARGET_COST_PCT = 35.0
TARGET_COST_PCT_BY_DATASET = {"mmlu_pro": 25.0}
TARGET_AIQ_MARGIN = 0.03
TARGET_SECONDS = 900.0


def _median(values: Iterable[float]) -> float:
    return float(np.median(list(values)))


def _entry(
    name: str, kind: str, lam: float | None, quality: float, cost: float, ref: tuple[float, float]
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "lambda_cost": lam,
        "quality": quality,
        "cost_usd": cost,
        "quality_pct_of_best": pct(quality, ref[0]),
        "cost_pct_of_best": pct(cost, ref[1]),
    }


def _groups(runs: Sequence[LearnedRun]) -> dict[tuple[str, float], list[LearnedRun]]:
    groups: dict[tuple[str, float], list[LearnedRun]] = {}
    for run in runs:
        groups.setdefault((run.spec.variant, run.spec.lambda_cost), []).append(run)
    return groups


def _pass_medians(runs: Sequence[LearnedRun], which: str) -> tuple[float, float]:
    passes: list[PassResult] = [getattr(run, which) for run in runs]
    return _median(p.mean_quality for p in passes), _median(p.mean_cost_usd for p in passes)


def _train_tail(runs: Sequence[LearnedRun], matrix: RoutingMatrix, best: int) -> dict[str, float]:
    """Quality and cost over the second half of the train stream, and the best single
    model's quality on those prompts (medians over seeds)."""
    quality, cost, reference = [], [], []
    for run in runs:
        half = len(run.train.rows) // 2
        rows = run.train.rows[half:]
        quality.append(float(run.train.quality[half:].mean()))
        cost.append(float(run.train.cost_usd[half:].mean()))
        reference.append(float(matrix.quality[rows, best].mean()))
    return {
        "quality": _median(quality),
        "cost_usd": _median(cost),
        "best_quality": _median(reference),
    }


def _holdout(runs: Sequence[LearnedRun], matrix: RoutingMatrix, best: int) -> dict[str, float]:
    """Quality and cost of the held-out end of the train stream, scored frozen, and the best
    single model's quality on those prompts (medians over seeds); the train tail when a run
    held nothing out (a tiny train split)."""
    if any(len(run.holdout.rows) == 0 for run in runs):
        return _train_tail(runs, matrix, best)
    return {
        "quality": _median(run.holdout.mean_quality for run in runs),
        "cost_usd": _median(run.holdout.mean_cost_usd for run in runs),
        "best_quality": _median(
            float(matrix.quality[run.holdout.rows, best].mean()) for run in runs
        ),
    }


def _regret(
    result: BenchResult, runs: Sequence[LearnedRun], oracle_pick: IndexArray
) -> dict[str, float]:
    matrix, ref = result.matrix, result.settings.cost_ref_usd
    train_totals: list[float] = []
    test_totals: list[float] = []
    for run in runs:
        lam = run.spec.lambda_cost
        for which, totals in ((run.train, train_totals), (run.online, test_totals)):
            columns = oracle_pick[which.rows]
            curve = cumulative_regret(
                which.quality,
                which.cost_usd,
                matrix.quality[which.rows, columns],
                matrix.cost_usd[which.rows, columns],
                lambda_cost=lam,
                cost_ref_usd=ref,
            )
            totals.append(float(curve[-1]))
    n_train = len(runs[0].train.rows)
    n_test = len(runs[0].online.rows)
    return {
        "train_total": _median(train_totals),
        "train_per_request": _median(train_totals) / n_train,
        "test_online_total": _median(test_totals),
        "test_online_per_request": _median(test_totals) / n_test,
    }


def _baseline_policies(result: BenchResult, ref: tuple[float, float]) -> list[dict[str, Any]]:
    """The baselines' rows: oracle, every single model, random, task-level and kNN at their
    best quality (lambda_cost 0), the cascade with the cheap model chosen on train, plain and
    sending the router's escalation prompt."""
    matrix = result.matrix
    point = {b.name: b for b in result.baselines if b.lambda_cost in (None, 0.0)}
    rows = [
        _entry(
            name,
            "baseline",
            point[name].lambda_cost,
            point[name].quality,
            point[name].cost_usd,
            ref,
        )
        for name in ("oracle", *matrix.models, "random", "task-level", "kNN")
    ]
    cascades = []
    for name in ("cascade", PROMPTED_CASCADE):
        cascade = point[name]
        entry = _entry(name, "baseline", None, cascade.quality, cascade.cost_usd, ref)
        entry["cheap_model"] = matrix.models[result.cascade_cheap]
        entry["strong_model"] = matrix.models[result.best]
        cascades.append(entry)
    return [*rows, *cascades]


def _learned_policies(
    result: BenchResult, ref: tuple[float, float]
) -> tuple[
    list[dict[str, Any]], dict[str, dict[str, float]], dict[tuple[str, float], dict[str, float]]
]:
    """The learned rows (medians over seeds), their regret and their held-out train figures."""
    matrix = result.matrix
    oracle_pick = oracle_columns(matrix, np.arange(len(matrix.prompts), dtype=np.intp))
    policies: list[dict[str, Any]] = []
    regret: dict[str, dict[str, float]] = {}
    tails: dict[tuple[str, float], dict[str, float]] = {}
    for (variant, lam), runs in _groups(result.learned).items():
        quality, cost = _pass_medians(runs, "frozen")
        online_q, online_c = _pass_medians(runs, "online")
        entry = _entry(f"{LEARNED_PREFIX}{variant}", "learned", lam, quality, cost, ref)
        entry["online"] = {
            "quality": online_q,
            "cost_usd": online_c,
            "quality_pct_of_best": pct(online_q, ref[0]),
            "cost_pct_of_best": pct(online_c, ref[1]),
        }
        entry["escalated_share"] = _median(float(r.frozen.escalated.mean()) for r in runs)
        entry["cut_share"] = _median(float(r.frozen.cut.mean()) for r in runs)
        entry["failed_share"] = _median(float((r.frozen.column < 0).mean()) for r in runs)
        entry["judge_calls_per_request"] = {
            name: _median(getattr(r, name).judge_calls_per_request for r in runs)
            for name in ("train", "frozen", "online")
        }
        entry["per_seed"] = [
            {
                "seed": r.spec.seed,
                "quality": r.frozen.mean_quality,
                "cost_usd": r.frozen.mean_cost_usd,
            }
            for r in runs
        ]
        entry["train_tail"] = _train_tail(runs, matrix, result.best)
        tails[(variant, lam)] = entry["holdout"] = _holdout(runs, matrix, result.best)
        policies.append(entry)
        regret[f"{LEARNED_PREFIX}{variant} lambda={lam:g}"] = _regret(result, runs, oracle_pick)
    return policies, regret, tails


def build_report(
    result: BenchResult,
    *,
    wall_seconds: float | None = None,
    cpu_seconds: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """The content of ``report.json`` (see the module contract); ``seconds`` is
    ``wall_seconds`` when given (the whole command), else the benchmark's own run time;
    ``cpu_seconds``, when given, what the run cost in CPU (``cpu_seconds`` in the report:
    the benchmark's processes, Postgres)."""
    matrix, options, settings = result.matrix, result.options, result.settings
    test = matrix.rows("test")
    best = result.best
    best_quality = float(matrix.quality[test, best].mean())
    best_cost = float(matrix.cost_usd[test, best].mean())
    ref = (best_quality, best_cost)
    learned, regret, holdouts = _learned_policies(result, ref)
    policies = [*_baseline_policies(result, ref), *learned]
    oracle = policies[0]
    curves = _curves(result, policies)
    aiq_values = aiq(
        {name: [(p["cost_usd"], p["quality"]) for p in points] for name, points in curves.items()}
    )
    chosen = _operating_point(holdouts)
    runs_all = result.learned
    seconds_learned = sum(p.seconds for r in runs_all for p in r.passes)
    decisions = sum(p.decisions for r in runs_all for p in r.passes)
    requests = sum(len(p.rows) for r in runs_all for p in r.passes)
    report: dict[str, Any] = {
        "dataset": matrix.name,
        "split": "test",
        "n_prompts": len(test),
        "n_train_prompts": len(matrix.rows("train")),
        "n_dropped_prompts": matrix.dropped,
        "models": list(matrix.models),
        "judge_accuracy": options.judge_accuracy,
        "seeds": list(options.seeds),
        "reference": {
            "best_single": {
                "model": matrix.models[best],
                "quality": best_quality,
                "cost_usd": best_cost,
            },
            "oracle": {"quality": oracle["quality"], "cost_usd": oracle["cost_usd"]},
        },
        "policies": policies,
        "aiq": aiq_values,
        "curves": curves,
        "regret": regret,
        "judge_simulation": judge_assumptions(matrix, options.judge_accuracy),
        "settings": {
            "variants": {v: VARIANTS[v].description for v in options.variants},
            "lambdas": list(result.points.judged),
            "judged_skipped": result.points.judged_skipped,
            "pre_lambdas": list(result.points.pre),
            "lambdas_chosen_on_train": result.points.chosen_on_train,
            "escalation_break_even_lambda": result.points.break_even,
            "cost_term": "cost / (cost + cost_ref_usd)",
            "cost_ref_usd": settings.cost_ref_usd,
            "escalation_targets": list(settings.escalation_targets),
            "escalation_ladders": [
                {"steps": steps, "lambda_cost": lam, "targets": list(targets)}
                for (steps, lam), targets in settings.ladders
            ],
            "exploration": settings.exploration,
            "gamma_scale": settings.gamma_scale,
            "epsilon": settings.epsilon,
            "learning_rate": settings.learning_rate,
            "knn_k": settings.knn_k,
            "embedder": settings.embedder,
            "history": "index" if settings.history_index else "store",
            "anchor": settings.anchor,
            "pre_credit": settings.pre_credit,
            "pre_rule": settings.pre_rule,
            "hints": ["task"] if settings.task_hint else [],
            "order": options.order,
            "chosen_on": "train (best single model, cost reference, escalation targets, "
            "cascade cheap model, lambda_cost points, operating point)",
        },
        "throughput": {
            "decisions_per_s": decisions / seconds_learned if seconds_learned else 0.0,
            "requests_per_s": requests / seconds_learned if seconds_learned else 0.0,
            "learned_runs": len(runs_all),
            "workers": result.workers,
        },
        "seconds": result.seconds if wall_seconds is None else wall_seconds,
        **({} if cpu_seconds is None else {"cpu_seconds": dict(cpu_seconds)}),
        "operating_point": None
        if chosen is None
        else {"variant": chosen[0], "lambda_cost": chosen[1], "holdout": holdouts[chosen]},
    }
    report["targets"] = targets(report)
    return report


def _curves(
    result: BenchResult, policies: Sequence[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Every router's operating points, for AIQ and the frontier plot."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for b in result.baselines:
        name = b.curve.removeprefix("single:")
        point: dict[str, Any] = {"quality": b.quality, "cost_usd": b.cost_usd}
        if b.lambda_cost is not None:
            point["lambda_cost"] = b.lambda_cost
        if b.curve in ("cascade", PROMPTED_CASCADE):
            point["cheap_model"] = (
                b.name.removeprefix("cascade:")
                if ":" in b.name
                else (result.matrix.models[result.cascade_cheap])
            )
        curves.setdefault(name, []).append(point)
    for p in policies:
        if p["kind"] != "learned":
            continue
        curves.setdefault(LEARNED_CURVE, []).append(
            {
                "variant": p["name"].removeprefix(LEARNED_PREFIX),
                "lambda_cost": p["lambda_cost"],
                "quality": p["quality"],
                "cost_usd": p["cost_usd"],
            }
        )
        for suffix, values in (("", p), (" (online)", p["online"])):
            curves.setdefault(f"{p['name']}{suffix}", []).append(
                {
                    "lambda_cost": p["lambda_cost"],
                    "quality": values["quality"],
                    "cost_usd": values["cost_usd"],
                }
            )
    return curves


def _operating_point(
    tails: Mapping[tuple[str, float], Mapping[str, float]],
) -> tuple[str, float] | None:
    if not tails:
        return None
    reaching = [k for k, t in tails.items() if t["quality"] >= t["best_quality"]]
    if reaching:
        return min(reaching, key=lambda k: tails[k]["cost_usd"])
    return max(tails, key=lambda k: tails[k]["quality"])


def targets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, measured (printed by the benchmark, never asserted)."""
    learned = [p for p in report["policies"] if p["kind"] == "learned"]
    cost_target = TARGET_COST_PCT_BY_DATASET.get(report["dataset"], TARGET_COST_PCT)
    checks: list[dict[str, Any]] = []
    point = report["operating_point"]
    if point is not None:
        chosen = next(
            p
            for p in learned
            if p["name"] == f"{LEARNED_PREFIX}{point['variant']}"
            and p["lambda_cost"] == point["lambda_cost"]
        )
        checks.append(
            {
                "target": f"a learned variant reaches >= {TARGET_QUALITY_PCT:g}% of the best "
                f"single model's quality at <= {cost_target:g}% of its cost (operating "
                "point chosen on train)",
                "measured": f"{chosen['name']} lambda={chosen['lambda_cost']:g}: "
                f"{chosen['quality_pct_of_best']:.1f}% quality at "
                f"{chosen['cost_pct_of_best']:.1f}% cost",
                "met": chosen["quality_pct_of_best"] >= TARGET_QUALITY_PCT
                and chosen["cost_pct_of_best"] <= cost_target,
            }
        )
        meeting = [
            p
            for p in learned
            if p["quality_pct_of_best"] >= TARGET_QUALITY_PCT
            and p["cost_pct_of_best"] <= cost_target
        ]
        checks.append(
            {
                "target": "the same, at any measured learned point (looked up on test: for "
                "information, not a claim)",
                "measured": ", ".join(f"{p['name']} lambda={p['lambda_cost']:g}" for p in meeting)
                or "none",
                "met": bool(meeting),
            }
        )
    aiq_values = report["aiq"]
    rivals = [m for m in report["models"]] + ["random", "task-level"]
    best_learned = max(
        (
            name
            for name in aiq_values
            if (name.startswith(LEARNED_PREFIX) or name == LEARNED_CURVE) and "(online)" not in name
        ),
        key=lambda name: aiq_values[name],
        default=None,
    )
    if best_learned is not None:
        strongest = max(rivals, key=lambda name: aiq_values.get(name, 0.0))
        checks.append(
            {
                "target": "a learned variant's AIQ beats every single model's, random's and the "
                "task-level router's",
                "measured": f"{best_learned} {aiq_values[best_learned]:.4f} vs "
                f"{strongest} {aiq_values[strongest]:.4f}",
                "met": aiq_values[best_learned] > aiq_values[strongest],
            }
        )
    if best_learned is not None and "task-level" in aiq_values:
        margin = aiq_values[best_learned] - aiq_values["task-level"]
        checks.append(
            {
                "target": f"the learned AIQ beats the task-level router's by >= "
                f"{TARGET_AIQ_MARGIN:g}",
                "measured": f"{margin:+.4f}",
                "met": margin >= TARGET_AIQ_MARGIN,
            }
        )
    checks.extend(dominance_checks(report))
    checks.append(
        {
            "target": f"the whole run finishes in under {TARGET_SECONDS:g} s",
            "measured": f"{report['seconds']:.0f} s",
            "met": report["seconds"] < TARGET_SECONDS,
        }
    )
    return checks


def dominance_checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Two checks on the learned points: none pays more than the best single model for less
    quality, and every point of the cascade curve (one per cheap model) is dominated (at
    least as good for at most the cost) by some learned point."""
    learned = [p for p in report["policies"] if p["kind"] == "learned"]
    if not learned:
        return []
    best = report["reference"]["best_single"]
    losing = [
        f"{p['name']} lambda={p['lambda_cost']:g}"
        for p in learned
        if p["cost_usd"] > best["cost_usd"] and p["quality"] < best["quality"]
    ]
    checks = [
        {
            "target": "no learned point costs more than the best single model while "
            "delivering less quality",
            "measured": ", ".join(losing) or "none does",
            "met": not losing,
        }
    ]
    cascades = report["curves"].get("cascade", [])
    if cascades:
        undominated = [
            str(c.get("cheap_model", "?"))
            for c in cascades
            if not any(
                p["quality"] >= c["quality"] and p["cost_usd"] <= c["cost_usd"] for p in learned
            )
        ]
        checks.append(
            {
                "target": "every cascade point is dominated by a learned point",
                "measured": f"{len(cascades) - len(undominated)} of {len(cascades)} dominated"
                + (f"; not those of {', '.join(undominated)}" if undominated else ""),
                "met": not undominated,
            }
        )
    return checks


def judge_assumptions(matrix: RoutingMatrix, accuracy: float) -> dict[str, Any]:
    """What the judge simulation assumes, stated in every report."""
    return describe(matrix, accuracy) | {
        "why": "recorded data has no judge outputs; the simulated accuracy does not depend on "
        "the judge model, so the judge arm is fixed rather than chosen by a policy",
        "escalation_prompts": "prompts the router writes around a request (escalation with the "
        "rejected answer, component repair) get the recorded answer to the request, billed at "
        "the recorded cost plus the extra input tokens at the model's list input price",
    }


def write_report(report: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def frontier_points(report: Mapping[str, Any]) -> dict[str, list[Point]]:
    """(cost % of best, quality % of best) points of every curve, for plotting."""
    best = report["reference"]["best_single"]
    return {
        name: [
            (pct(p["cost_usd"], best["cost_usd"]), pct(p["quality"], best["quality"]))
            for p in points
        ]
        for name, points in report["curves"].items()
    }
