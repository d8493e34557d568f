"""``signalroute bench-cold``: the first requests of a new demo service, as a new user sees them.

A new service (empty store, cold policies, the demo replay pool, default stages and
objective) is started in a process of its own; ``--requests`` RouterBench prompts, in a
seeded order, go to ``/route-and-run`` one after the other. From each trace: whether the
first answer passed every check (its validators, and the judge when it was asked), whether
it was escalated, what the request cost and whether the delivered answer is a correct one
(the recorded label of the answer delivered). Costs are compared with the cheapest arm of
the pool on the same prompts (its recorded cost) and with the best single model's.

The figure of merit is the share of answers that passed every check and were escalated
anyway: what a cold learned stage costs a user over the rule it generalizes (accept what
passed), which is 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from router.settings import ReplaySettings
from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord, load_routerbench
from router.tools.service_bench.processes import benchmark_environment, free_port, server_process

BEST_SINGLE = "gpt-4-1106-preview"
BLOCK = 100


@dataclass(frozen=True)
class Observed:
    """What one routed request did."""

    passed: bool
    """The first answer passed every check that ran."""
    escalated: bool
    cost_usd: float
    correct: float
    cheapest_usd: float
    best_usd: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=500, help="requests to send")
    parser.add_argument("--seed", type=int, default=0, help="prompt order and service seed")
    parser.add_argument("--out", type=Path, default=Path("out/cold"), help="report folder")


def observe(result: Mapping[str, Any], record: ReplayRecord) -> Observed:
    """Read one ``/route-and-run`` result against the recording of its prompt."""
    decisions = result["trace"]["decisions"]
    posts = [d for d in decisions if d["stage"] == "post"]
    first_post = posts[0] if posts else None
    if first_post is not None:
        output = first_post["signals"].get("output", {})
        passed = output.get("validators_failed", 0) == 0 and output.get("judge_low", 0) != 1
    else:
        passed = result["trace"]["assessment"].get("quality", 0.0) >= 0.5
    escalated = any(str(d["arm"]).startswith("escalate:") for d in posts)
    delivered = [o for o in record.outcomes if o.response == result["output"]]
    costs = [o.cost_usd for o in record.outcomes]
    return Observed(
        passed=passed,
        escalated=escalated,
        cost_usd=float(result["cost_usd"]),
        correct=delivered[0].correct if delivered else 0.0,
        cheapest_usd=min(costs),
        best_usd=record.outcome(BEST_SINGLE).cost_usd,
    )


def summarize(observed: Sequence[Observed]) -> dict[str, Any]:
    """The report's figures over ``observed`` (in order), overall and per block of 100."""

    def figures(part: Sequence[Observed]) -> dict[str, Any]:
        passed = [o for o in part if o.passed]
        failed = [o for o in part if not o.passed]
        cost = sum(o.cost_usd for o in part)
        return {
            "requests": len(part),
            "passed_share": len(passed) / len(part),
            "passed_escalated_share": (
                sum(o.escalated for o in passed) / len(passed) if passed else None
            ),
            "failed_escalated_share": (
                sum(o.escalated for o in failed) / len(failed) if failed else None
            ),
            "escalated_share": sum(o.escalated for o in part) / len(part),
            "quality": float(np.mean([o.correct for o in part])),
            "cost_usd": cost / len(part),
            "cost_x_cheapest_arm": cost / max(sum(o.cheapest_usd for o in part), 1e-12),
            "cost_pct_of_best_single": 100 * cost / max(sum(o.best_usd for o in part), 1e-12),
        }

    blocks = [observed[i : i + BLOCK] for i in range(0, len(observed), BLOCK)]
    return {"overall": figures(observed), "blocks": [figures(b) for b in blocks if b]}


def markdown(report: Mapping[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "" if value is None else f"{100 * value:.1f}"

    lines = [
        f"# A new demo service's first {report['overall']['requests']} requests",
        "",
        "| requests | passed every check % | passed, escalated % | failed, escalated % "
        "| escalated % | quality | cost x cheapest arm | cost % of gpt-4 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("all", report["overall"])] + [
        (f"{i * BLOCK + 1}-{i * BLOCK + b['requests']}", b) for i, b in enumerate(report["blocks"])
    ]
    for label, f in rows:
        lines.append(
            f"| {label} | {pct(f['passed_share'])} | {pct(f['passed_escalated_share'])} | "
            f"{pct(f['failed_escalated_share'])} | {pct(f['escalated_share'])} | "
            f"{f['quality']:.3f} | {f['cost_x_cheapest_arm']:.2f} | "
            f"{f['cost_pct_of_best_single']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _prompts(dataset: ReplayDataset, n: int, seed: int) -> list[ReplayRecord]:
    records = list(dataset)
    order = np.random.default_rng(seed).permutation(len(records))
    return [records[int(i)] for i in order[:n]]


def run(args: argparse.Namespace) -> int:
    """Start a new demo service, route ``--requests`` prompts, write ``cold.json`` and
    ``cold.md`` under ``--out``."""
    from tqdm import tqdm

    data = ReplaySettings().data_path()
    records = _prompts(load_routerbench(data), args.requests, args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="signalroute-cold-"))
    port = free_port()
    env = benchmark_environment(args.seed, data, SIGNALROUTE_DATA_DIR=str(folder / "data"))
    command = [sys.executable, "-m", "router.cli", "serve", "--port", str(port)]
    observed: list[Observed] = []
    try:
        base = f"http://127.0.0.1:{port}"
        with (
            server_process(command, env, out / "service.log", f"{base}/readyz"),
            httpx.Client(base_url=base, timeout=120) as client,
        ):
            for record in tqdm(records, unit="req", desc="routing"):
                body = {"messages": [{"role": "user", "content": record.prompt}]}
                response = client.post("/route-and-run", json=body)
                response.raise_for_status()
                observed.append(observe(response.json(), record))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = {"seed": args.seed, **summarize(observed), "observed": [asdict(o) for o in observed]}
    (out / "cold.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / "cold.md").write_text(text)
    print(text)
    return 0
