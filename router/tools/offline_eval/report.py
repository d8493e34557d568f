"""Reports of an evaluation: JSON (stable keys), a Markdown table and a PNG plot.

matplotlib is imported only to draw, and is optional (the ``analysis`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from features.errors import ConfigError
from learner.ope.evaluation import CandidateReport, Evaluation

LABELS = {"ips": "IPS", "snips": "SNIPS", "dm": "DM", "dr": "DR"}


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def candidate_json(report: CandidateReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "estimates": {
            e.estimator: {"value": _number(e.value), "low": _number(e.low), "high": _number(e.high)}
            for e in report.estimates
        },
        "effective_sample_size": report.effective_sample_size,
        "max_weight": report.max_weight,
        "arm_share": dict(report.arm_share),
        "support": {
            "supported": report.support.supported,
            "unsupported_mass": report.support.unsupported_mass,
            "low_propensity_mass": report.support.low_propensity_mass,
            "min_propensity": report.support.min_propensity,
            "unexplored_arms": list(report.support.unexplored_arms),
            "warnings": list(report.support.warnings()),
        },
    }


def evaluation_json(evaluation: Evaluation, setup: Mapping[str, Any]) -> dict[str, Any]:
    """The replay report: ``setup`` (source, filters, timings...) then the results."""
    config = evaluation.config
    return {
        **setup,
        "n_logged": evaluation.n,
        "logged_reward": evaluation.logged_reward,
        "logged_share": dict(evaluation.logged_share),
        "estimators": list(config.estimators),
        "resamples": config.resamples,
        "level": config.level,
        "reward_model": {
            "kind": "per-arm ridge regression, cross-fitted",
            "folds": config.reward_model.folds,
            "ridge": config.reward_model.ridge,
        },
        "candidates": [candidate_json(c) for c in evaluation.candidates],
    }


def _cell(report: CandidateReport, estimator: str) -> str:
    for e in report.estimates:
        if e.estimator == estimator:
            if math.isnan(e.value):
                return "n/a"
            if math.isnan(e.low):
                return f"{e.value:.3f}"
            return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"
    return ""


def evaluation_markdown(evaluation: Evaluation, setup_lines: Sequence[str]) -> str:
    """A short Markdown report: the setup, one row per candidate, then the warnings."""
    config = evaluation.config
    estimators = [LABELS[e] for e in config.estimators]
    lines = ["# Offline policy evaluation", ""]
    lines += [f"- {line}" for line in setup_lines]
    lines += [
        f"- {evaluation.n} logged decisions, mean logged reward {evaluation.logged_reward:.3f}",
        f"- intervals: {config.level:.0%} paired bootstrap, {config.resamples} resamples; "
        "ESS: effective sample size of the importance weights",
        "",
        "| candidate | " + " | ".join(estimators) + " | ESS | support |",
        "|---|" + "---|" * len(estimators) + "---:|---|",
    ]
    for report in evaluation.candidates:
        cells = [_cell(report, e) for e in config.estimators]
        support = "ok" if report.support.supported else "**no support**"
        if report.support.supported and report.support.low_propensity_mass > 0:
            support = f"low: {report.support.low_propensity_mass:.0%}"
        lines.append(
            f"| {report.name} | "
            + " | ".join(cells)
            + f" | {report.effective_sample_size:,.0f} | {support} |"
        )
    warned = [(r.name, w) for r in evaluation.candidates for w in r.support.warnings()]
    if warned:
        lines += ["", "Warnings:", ""]
        lines += [f"- **{name}**: {warning}" for name, warning in warned]
    return "\n".join(lines) + "\n"


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError(
            f"the plot needs matplotlib ({exc}): pip install 'signalroute[analysis]', "
            "or pass --no-plot"
        ) from None
    return plt


def plot_evaluation(evaluation: Evaluation, path: Path, title: str) -> None:
    """Each candidate's estimates with their intervals, one marker per estimator."""
    plt = _pyplot()
    estimators = list(evaluation.config.estimators)
    candidates = list(evaluation.candidates)
    height = 1.2 + 0.55 * len(candidates)
    figure, axes = plt.subplots(figsize=(8.0, height))
    spread = 0.6 / max(1, len(estimators))
    for e_index, estimator in enumerate(estimators):
        ys, xs, lows, highs = [], [], [], []
        for c_index, report in enumerate(candidates):
            interval = report.value(estimator)
            if math.isnan(interval.value):
                continue
            ys.append(c_index + (e_index - (len(estimators) - 1) / 2) * spread)
            xs.append(interval.value)
            low = interval.value if math.isnan(interval.low) else interval.low
            high = interval.value if math.isnan(interval.high) else interval.high
            lows.append(interval.value - low)
            highs.append(high - interval.value)
        axes.errorbar(xs, ys, xerr=[lows, highs], fmt="o", capsize=3, label=LABELS[estimator])
    axes.axvline(evaluation.logged_reward, color="grey", linestyle=":", label="logged mean")
    axes.set_yticks(range(len(candidates)))
    axes.set_yticklabels([c.name for c in candidates])
    axes.invert_yaxis()
    axes.set_xlabel(f"estimated mean reward ({evaluation.config.level:.0%} bootstrap interval)")
    axes.set_title(title)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        plt.close(figure)
