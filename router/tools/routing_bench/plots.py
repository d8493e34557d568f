"""The benchmark's PNG plots: the cost-quality frontier and the learning curve.

matplotlib (the ``analysis`` extra) is imported only here and only when plotting; it draws
off-screen (Agg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from features.errors import ConfigError
from router.tools.routing_bench.learned import LearnedRun
from router.tools.routing_bench.matrix import FloatArray
from router.tools.routing_bench.metrics import (
    cumulative_regret,
    nondecreasing_hull,
    pct,
    rolling_mean,
)
from router.tools.routing_bench.report import LEARNED_CURVE, LEARNED_PREFIX, frontier_points
from router.tools.routing_bench.run import PROMPTED_CASCADE, BenchResult

LEARNED_COLOURS = {
    "pre": "tab:blue",
    "escalation": "tab:red",
    "escalation-gated": "tab:pink",
    "chain": "tab:cyan",
    "chain-strongest": "tab:gray",
    "chain-reasons": "darkcyan",
    "chain-front": "navy",
    "chain-front-reasons": "teal",
    "components": "tab:olive",
    "full": "tab:purple",
}
BASELINE_STYLES = {
    "task-level": ("tab:green", "--"),
    "kNN": ("tab:orange", "--"),
    "cascade": ("tab:brown", ":"),
}


def _seeds(seeds: Sequence[int]) -> str:
    return f"medians over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plots need matplotlib: pip install 'signalroute[analysis]' (or pass --no-plots)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def frontier(report: Mapping[str, Any], path: Path) -> Path:
    """Quality against cost (both % of the best single model): single models, oracle,
    random, baseline curves (their non-decreasing hulls) and the learned curves."""
    plt = _pyplot()
    points = frontier_points(report)
    models = set(report["models"])
    fig, ax = plt.subplots(figsize=(8.5, 6), dpi=110)
    for name in sorted(models):
        (x, y) = points[name][0]
        ax.scatter([x], [y], color="grey", s=18, zorder=3)
        ax.annotate(
            name.split("/")[-1],
            (x, y),
            fontsize=6.5,
            color="dimgrey",
            xytext=(3, 2),
            textcoords="offset points",
        )
    (ox, oy) = points["oracle"][0]
    ax.scatter(
        [ox], [oy], marker="*", s=120, color="gold", edgecolor="black", zorder=4, label="oracle"
    )
    (rx, ry) = points["random"][0]
    ax.scatter([rx], [ry], marker="x", s=40, color="black", zorder=4, label="random")
    for name, (colour, style) in BASELINE_STYLES.items():
        hull = nondecreasing_hull(points.get(name, []))
        if hull:
            ax.plot(*zip(*hull, strict=True), style, color=colour, lw=1.4, label=f"{name} (hull)")
    if report["curves"].get("cascade"):
        marks = (
            ("cascade", {"color": "tab:brown"}, "cascade (cheap model chosen on train)"),
            (
                PROMPTED_CASCADE,
                {"facecolor": "none", "edgecolor": "tab:brown"},
                "the same cascade, sent the router's escalation prompt",
            ),
        )
        for name, colours, label in marks:
            chosen = next((p for p in report["policies"] if p["name"] == name), None)
            if chosen is not None:
                ax.scatter(
                    [chosen["cost_pct_of_best"]],
                    [chosen["quality_pct_of_best"]],
                    marker="s",
                    s=36,
                    zorder=4,
                    label=label,
                    **colours,
                )
    for variant, colour in LEARNED_COLOURS.items():
        name = f"{LEARNED_PREFIX}{variant}"
        if name not in points:
            continue
        curve = sorted(points[name])
        ax.plot(*zip(*curve, strict=True), "-o", color=colour, lw=1.8, ms=4, label=name)
        online = sorted(points.get(f"{name} (online)", []))
        if online:
            ax.plot(
                *zip(*online, strict=True),
                ":",
                marker=".",
                color=colour,
                lw=1,
                alpha=0.7,
                label=f"{name} (online)",
            )
    union = nondecreasing_hull(points.get(LEARNED_CURVE, []))
    if len(union) > 1:
        ax.plot(
            *zip(*union, strict=True),
            "-",
            color="black",
            lw=0.9,
            alpha=0.6,
            label=f"{LEARNED_CURVE} (hull of all learned points)",
        )
    ax.axhline(100, color="lightgrey", lw=0.8, zorder=0)
    ax.axvline(100, color="lightgrey", lw=0.8, zorder=0)
    best = report["reference"]["best_single"]["model"]
    ax.set_xlabel(f"cost per prompt, % of {best}")
    ax.set_ylabel(f"quality, % of {best}")
    ax.set_title(
        f"{report['dataset']} test split: cost-quality frontier "
        f"(judge accuracy {report['judge_accuracy']:g}, {_seeds(report['seeds'])})",
        fontsize=9.5,
    )
    ax.set_xscale("log")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _stream(run: LearnedRun) -> tuple[FloatArray, FloatArray, np.ndarray]:
    quality = np.concatenate([run.train.quality, run.online.quality])
    cost = np.concatenate([run.train.cost_usd, run.online.cost_usd])
    rows = np.concatenate([run.train.rows, run.online.rows])
    return quality, cost, rows


def learning_curve(
    result: BenchResult, report: Mapping[str, Any], path: Path, *, window: int = 200
) -> Path:
    """Per learned variant, at the operating point's lambda_cost (median over seeds): rolling
    quality and cost (% of the best single model) and cumulative regret against the oracle,
    over the train stream and then the test split learning on."""
    plt = _pyplot()
    from router.tools.routing_bench.baselines import oracle_columns

    matrix = result.matrix
    best = report["reference"]["best_single"]
    point = report.get("operating_point") or {}
    lam = point.get("lambda_cost")
    if lam is None:
        lam = next(iter((*result.points.judged, *result.points.pre)), 0.0)
    every = np.arange(len(matrix.prompts), dtype=np.intp)
    oracle = oracle_columns(matrix, every)
    fig, axes = plt.subplots(3, 1, figsize=(8.5, 8), dpi=110, sharex=True)
    boundary = 0
    for variant, colour in LEARNED_COLOURS.items():
        runs = [
            r for r in result.learned if r.spec.variant == variant and r.spec.lambda_cost == lam
        ]
        if not runs:
            continue
        qualities, costs, regrets = [], [], []
        for run in runs:
            quality, cost, rows = _stream(run)
            boundary = len(run.train.rows)
            qualities.append(rolling_mean(quality, window))
            costs.append(rolling_mean(cost, window))
            regrets.append(
                cumulative_regret(
                    quality,
                    cost,
                    matrix.quality[rows, oracle[rows]],
                    matrix.cost_usd[rows, oracle[rows]],
                    lambda_cost=lam,
                    cost_ref_usd=result.settings.cost_ref_usd,
                )
            )
        x = np.arange(1, len(qualities[0]) + 1)
        label = f"{LEARNED_PREFIX}{variant}"
        axes[0].plot(
            x,
            [pct(v, best["quality"]) for v in np.median(qualities, axis=0)],
            color=colour,
            label=label,
        )
        axes[1].plot(
            x,
            [pct(v, best["cost_usd"]) for v in np.median(costs, axis=0)],
            color=colour,
            label=label,
        )
        axes[2].plot(x, np.median(regrets, axis=0), color=colour, label=label)
    for ax in axes:
        ax.axvline(boundary, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.25)
    axes[0].axhline(100, color="lightgrey", lw=0.8)
    axes[0].set_ylabel(f"quality, % of best\n(rolling {window})")
    axes[1].set_ylabel(f"cost, % of best\n(rolling {window})")
    axes[2].set_ylabel("cumulative regret\nvs oracle")
    axes[2].set_xlabel("requests routed (train stream, then test split learning on)")
    axes[0].set_title(
        f"{report['dataset']}: learning from a cold start, lambda_cost={lam:g} "
        f"({_seeds(result.options.seeds)})",
        fontsize=9.5,
    )
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(result: BenchResult, report: Mapping[str, Any], out: Path) -> Sequence[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return (
        frontier(report, out / "frontier.png"),
        learning_curve(result, report, out / "learning_curve.png"),
    )
