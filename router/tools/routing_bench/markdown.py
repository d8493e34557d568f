"""The benchmark report as a short Markdown document: the table, AIQ, targets, assumptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a short Markdown document: table, AIQ, targets, assumptions."""
    ref = report["reference"]
    best = ref["best_single"]
    lines = [
        f"# signalroute bench: {report['dataset']}",
        "",
        f"Test split: {report['n_prompts']} prompts (train {report['n_train_prompts']}"
        + (
            f", {report['n_dropped_prompts']} incomplete prompts left out"
            if report["n_dropped_prompts"]
            else ""
        )
        + f"); seeds {', '.join(map(str, report['seeds']))}; medians over seeds. "
        f"Best single model (chosen on train): {best['model']}, quality {best['quality']:.3f} at "
        f"${best['cost_usd']:.6f}/prompt; oracle {ref['oracle']['quality']:.3f} at "
        f"${ref['oracle']['cost_usd']:.6f}/prompt.",
        "",
        "| policy | kind | lambda_cost | quality | $/prompt | quality % of best | cost % of best "
        "| online quality % | online cost % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report["policies"]:
        online = p.get("online") or {}
        online_quality = _fmt(online.get("quality_pct_of_best"), ".1f")
        online_cost = _fmt(online.get("cost_pct_of_best"), ".1f")
        lines.append(
            f"| {p['name']} | {p['kind']} | {_fmt(p['lambda_cost'], 'g')} | {p['quality']:.3f} | "
            f"{p['cost_usd']:.6f} | {p['quality_pct_of_best']:.1f} | {p['cost_pct_of_best']:.1f} | "
            f"{online_quality} | {online_cost} |"
        )
    spread = [p for p in report["policies"] if p.get("per_seed")]
    if spread:
        lines += [
            "",
            "Spread over seeds (learned rows, frozen pass):",
            "",
            "| policy | lambda_cost | quality % of best, min-max | cost % of best, min-max |",
            "|---|---:|---:|---:|",
        ]
        for p in spread:
            q = [100 * s["quality"] / best["quality"] for s in p["per_seed"]]
            c = [100 * s["cost_usd"] / best["cost_usd"] for s in p["per_seed"]]
            lines.append(
                f"| {p['name']} | {_fmt(p['lambda_cost'], 'g')} | {min(q):.1f}-{max(q):.1f} | "
                f"{min(c):.1f}-{max(c):.1f} |"
            )
    lines += [
        "",
        "Learned rows: scored on test with learning off after the train stream; `online`: "
        "learning on through the test split. Each figure is the median over seeds on its own. "
        "The task-level and kNN baselines learn from the true label of every train prompt at no "
        "cost (task-level is also told each prompt's task); the learned router learns from the "
        f"simulated judge's verdicts ({1 - report['judge_accuracy']:.0%} of them wrong) and "
        "pays for every one"
        + (
            ", and is told each prompt's task as the request hint `task`."
            if "task" in report["settings"].get("hints", [])
            else "; it is not told the task."
        ),
        "",
        "| curve | AIQ |",
        "|---|---:|",
    ]
    for name, value in sorted(report["aiq"].items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {value:.4f} |")
    lines += ["", "Targets (measured, not asserted):", ""]
    for check in report["targets"]:
        mark = "met" if check["met"] else "NOT met"
        lines.append(f"- {check['target']}: {check['measured']} ({mark})")
    throughput = report["throughput"]
    judge = report["judge_simulation"]
    lines += [
        "",
        f"Learned runs: {throughput['learned_runs']} on {throughput['workers']} worker(s), "
        f"{throughput['decisions_per_s']:.0f} decisions/s and {throughput['requests_per_s']:.0f} "
        f"requests/s per worker (real features, VW, {_history(report)}, validators); whole run "
        f"{report['seconds']:.0f} s{_cpu(report)}.",
        "",
        f"Judge simulation: the verdict is {judge['verdict']}; judge accuracy "
        f"{judge['judge_accuracy']:g}; each verdict costs {judge['judge_cost']}. "
        f"{judge['why'].capitalize()}. "
        f"Escalation and repair prompts: {judge['escalation_prompts']}.",
        "",
        _targets(report["settings"]),
        "",
    ]
    skipped = report["settings"].get("judged_skipped")
    if skipped:
        lines += [
            f"Judged variants not run: {skipped}; judging every answer (`--judge always`), "
            "none could be cheaper than the best model.",
            "",
        ]
    return "\n".join(lines)


def _targets(settings: Mapping[str, Any]) -> str:
    """Where the judged variants escalate to, as chosen on train."""
    text = (
        "Escalation targets (chosen on train): the best models of the train Pareto front, "
        f"{', '.join(settings['escalation_targets'])}"
    )
    ladders = settings.get("escalation_ladders") or []
    if ladders:
        text += "; in their place, the ladder chosen on train (top first) " + "; ".join(
            f"at lambda_cost {ladder['lambda_cost']:g} for {ladder['steps']} step(s): "
            f"{', '.join(ladder['targets'])}"
            for ladder in ladders
        )
    return text + "."


def _cpu(report: Mapping[str, Any]) -> str:
    """The run's CPU seconds, when the report has them (wall time on a shared machine says
    as much about the neighbours)."""
    cpu = report.get("cpu_seconds")
    if cpu is None:
        return ""
    postgres = "" if cpu["postgres"] is None else f", {cpu['postgres']:.0f} CPU-s in Postgres"
    return f" ({cpu['benchmark']:.0f} CPU-s in the benchmark's processes{postgres})"


def _history(report: Mapping[str, Any]) -> str:
    """Where the run's historical look-up was answered."""
    index = report["settings"]["history"] == "index"
    return "kNN history from the in-process index" if index else "pgvector kNN"
