"""The command ``signalroute bench-degradation``: runs the scenario of
``router.tools.service_bench.degradation`` (one variant per anchoring choice) and writes each
report as JSON, Markdown and a PNG."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from router.settings import ReplaySettings, Settings
from router.tools.replay_pool.dataset import load_routerbench
from router.tools.service_bench.degradation import Report, Scenario, run_scenario


def plot(report: Report, path: Path) -> bool:
    """The degraded arm's share and circuit per window as a PNG; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    windows = report.windows
    starts = [w.start_s for w in windows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(starts, [w.probability for w in windows], marker="o", label="probability (PMF)")
    top.plot(starts, [w.drawn_share for w in windows], marker=".", alpha=0.6, label="drawn")
    top.plot(
        starts,
        [w.circuit_open_share for w in windows],
        color="black",
        linestyle="--",
        label="circuit open (share of requests)",
    )
    colours = {"slow": "gold", "errors": "orange", "outage": "red", "recovery": "lightgreen"}
    for name, start, end in report.scenario.phases():
        if name in colours:
            for axis in (top, bottom):
                axis.axvspan(start, end, color=colours[name], alpha=0.15)
            top.annotate(name, (start, 1.02), fontsize=8)
    top.set(ylabel="share of requests", ylim=(-0.02, 1.08))
    top.set_title(f"{report.degraded} degrades: its share of the traffic and its circuit")
    top.legend(fontsize=8, loc="center left")
    bottom.plot(
        starts,
        [w.latency_ms if w.latency_ms is not None else float("nan") for w in windows],
        marker="o",
        color="tab:purple",
    )
    bottom.set(xlabel="seconds into the run", ylabel=f"latency of {report.degraded} (ms)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def markdown(report: Report) -> str:
    lines = [
        f"Degraded arm: `{report.degraded}`; {report.requests} requests; "
        f"share {report.share_before:.2f} before, {report.share_outage:.2f} in the outage, "
        f"{report.share_recovered:.2f} at the end of the recovery.",
        f"Traffic moved (probability below half) at {report.moved_at_s} s; the breaker first "
        f"opened at {report.breaker_at_s} s; moved before the breaker: "
        f"{report.moved_before_breaker}; recovered: {report.recovered}.",
        "",
        "| window (s) | phase | requests | probability | drawn | circuit open | latency (ms) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for w in report.windows:
        latency = f"{w.latency_ms:.0f}" if w.latency_ms is not None else "-"
        lines.append(
            f"| {w.start_s:g} | {w.phase} | {w.requests} | {w.probability:.3f} | "
            f"{w.drawn_share:.3f} | {w.circuit_open_share:.3f} | {latency} |"
        )
    lines += ["", "| signal | low -> high | effect | right sign |", "|---|---|---:|---|"]
    for e in report.effects:
        lines.append(
            f"| {e.signal} | {e.low:g} -> {e.high:g} | {e.effect:+.4f} | "
            f"{'yes' if e.right else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--time-scale",
        type=float,
        default=Scenario.time_scale,
        help="multiplies every duration and latency (1: 7.5 minutes a variant)",
    )
    parser.add_argument("--concurrency", type=int, default=Scenario.concurrency)
    parser.add_argument("--seed", type=int, default=0, help="prompt order and service seed")
    parser.add_argument(
        "--degrade", default=None, help="the arm to degrade (default: the warm-up's favourite)"
    )
    parser.add_argument(
        "--anchor",
        choices=("on", "off", "both"),
        default="both",
        help="the pre-generation stage anchored to its rule (the service's default), the "
        "policy alone, or both, one run each",
    )
    parser.add_argument("--out", type=Path, default=Path("out/degradation"), help="report folder")


def run(args: argparse.Namespace) -> int:
    scenario = Scenario(time_scale=args.time_scale, concurrency=args.concurrency, seed=args.seed)
    dataset = load_routerbench(ReplaySettings().data_path())
    variants = {"on": (True,), "off": (False,), "both": (True, False)}[args.anchor]
    args.out.mkdir(parents=True, exist_ok=True)
    right = True  # traffic left the degraded arm before its breaker opened, in every variant
    for anchored in variants:
        workdir = Path(tempfile.mkdtemp(prefix="signalroute-degradation-"))
        started = time.perf_counter()
        try:
            settings = Settings(data_dir=workdir / "data", anchor=anchored)
            report = run_scenario(scenario, dataset, settings, workdir, degraded=args.degrade)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        report = replace(report, load_average=_load_average())
        name = f"degradation-anchor-{'on' if anchored else 'off'}"
        (args.out / f"{name}.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
        (args.out / f"{name}.md").write_text(markdown(report))
        plotted = plot(report, args.out / f"{name}.png")
        sys.stdout.write(f"\n## anchor {'on' if anchored else 'off'}\n\n{markdown(report)}")
        sys.stdout.write(
            f"\n{time.perf_counter() - started:.0f} s; load average {report.load_average}; "
            f"report {args.out / name}.md{' and .png' if plotted else ''}\n"
        )
        right = right and report.moved_before_breaker
    return 0 if right else 1


def _load_average() -> tuple[float, ...]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return ()
