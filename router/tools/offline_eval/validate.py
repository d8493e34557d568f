"""Validation of the estimators against ground truth, on a routing matrix.

On RouterBench every model's outcome on every prompt is recorded, so the true value of any
policy is exact: the mean over prompts of ``sum_a pi(a | x) r(x, a)``. The simulation:

* **Contexts** come from the router's own code (``features.query.query_signals`` with the
  hashing embedder and task categories, ``router.contexts.build_context`` over the demo
  pool's arms), with empty history, healthy arms and no budget: what a fresh service sees.
* **Reward**: ``learner.reward.shape_reward(correct, cost_usd, 0, RewardWeights())``, i.e.
  quality minus 0.3 x cost / $0.01 (RouterBench records no latency).
* **Logging policy** (fixed before any estimate was seen): epsilon-greedy with epsilon 0.5
  around a cheap task rule (top category ``code`` -> gpt-3.5-turbo-1106, anything else ->
  mixtral-8x7b); the other explored arms share epsilon uniformly (0.05 each);
  **claude-v1 is listed but never explored** (probability 0), to exercise the support check.
* **Logs** of n decisions walk the matrix in shuffled passes (a fresh order and fresh
  logging draws each pass) until n decisions are logged; each size runs with several seeds.
* **Targets**: always gpt-4; always gpt-3.5; the task rule code -> gpt-3.5, else gpt-4; a
  VW policy trained counterfactually (``--cb_type dr``, epsilon 0.05) on a separate 5,000-
  decision log, as it is and restricted to the arms the logging policy explored
  (``SupportRestricted``); and always claude-v1 (outside the logging support, flagged).
* **Estimators**: IPS, SNIPS, DM, DR with the cross-fitted per-arm ridge reward model, and
  95% paired bootstrap intervals (their coverage of the truth is reported too).

Reported per (estimator, n_logged, policy): the median estimate over seeds, the true value,
the median relative error ``|estimate - truth| / truth`` and its maximum, and the coverage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from features.categories import CategoryIndex
from features.embedding import HashingEmbedder
from features.errors import ConfigError
from features.historical import HistoricalSignals
from features.query import embed_query, query_signals
from features.system import Spend
from learner.config import PolicyConfig
from learner.context import Context
from learner.ope.candidates import (
    Candidate,
    FrozenVWPolicy,
    StaticPolicy,
    SupportRestricted,
    TaskRulePolicy,
    top_category,
)
from learner.ope.estimators import ESTIMATORS
from learner.ope.evaluation import EvaluationConfig, score
from learner.ope.log import BanditLog, FloatArray, IntArray, LoggedDecision, Outcome
from learner.ope.progress import Progress
from learner.ope.reward_model import RewardModelConfig, fit_reward_model
from learner.ope.training import train_policy
from learner.reward import RewardWeights, shape_reward
from router.contexts import build_context
from router.pool import demo_pool
from router.settings import ReplaySettings
from router.tools.offline_eval.arguments import add_arguments
from router.tools.offline_eval.loading import write_log
from router.tools.offline_eval.progress import TqdmProgress
from router.tools.offline_eval.replay_cli import run
from router.tools.replay_pool.dataset import ReplayDataset, load_routerbench

EPSILON = 0.5
CHEAP_CODE_ARM = "gpt-3.5-turbo-1106"
CHEAP_DEFAULT_ARM = "mistralai/mixtral-8x7b-chat"
UNEXPLORED_ARM = "claude-v1"
STRONG_ARM = "gpt-4-1106-preview"
TRAIN_LOG_SIZE = 5_000
TRAIN_SEED = 10_000


@dataclass(frozen=True)
class Matrix:
    """The routing matrix as the simulation uses it: one context per prompt, the true
    reward of every arm (columns in context arm order), and the logging PMF."""

    prompt_ids: tuple[str, ...]
    contexts: tuple[Context, ...]
    arms: tuple[str, ...]
    reward: FloatArray
    quality: FloatArray
    cost_usd: FloatArray
    logging_pmf: FloatArray


def logging_pmf(context: Context) -> FloatArray:
    """The logging policy's PMF over ``context``'s arms (see the module docstring)."""
    arms = context.arm_names
    greedy = CHEAP_CODE_ARM if top_category(context) == "code" else CHEAP_DEFAULT_ARM
    explored = [a for a in arms if a != UNEXPLORED_ARM]
    pmf = np.array([EPSILON / len(explored) if a in explored else 0.0 for a in arms])
    pmf[arms.index(greedy)] += 1.0 - EPSILON
    return pmf


def build_matrix(
    dataset: ReplayDataset, prompts: int | None, weights: RewardWeights, progress: Progress
) -> Matrix:
    """Contexts, true rewards and logging PMFs for the dataset's prompts (or a subset)."""
    pool = demo_pool()
    missing = [m for m in dataset.models if m not in pool.names]
    if missing:
        raise ConfigError(f"the demo pool has no arm for {', '.join(missing)}")
    arms = tuple(arm for arm in pool.arms if arm.name in dataset.models)
    records = list(dataset.records)
    if prompts is not None:
        if prompts < 10:
            raise ConfigError("--prompts must be >= 10")
        keep = np.sort(np.random.default_rng(0).permutation(len(records))[:prompts])
        records = [records[i] for i in keep]
    embedder = HashingEmbedder()
    categories = CategoryIndex.build(embedder)
    contexts: list[Context] = []
    progress.start("contexts", len(records))
    for record in records:
        messages = [{"role": "user", "content": record.prompt}]
        query = query_signals(messages, None, embed_query(embedder, messages), categories)
        contexts.append(
            build_context(arms, query, HistoricalSignals(), HistoricalSignals(), {}, Spend())
        )
        progress.advance()
    progress.finish()
    names = tuple(arm.name for arm in arms)
    quality = np.array([[r.outcome(a).correct for a in names] for r in records])
    cost = np.array([[r.outcome(a).cost_usd for a in names] for r in records])
    reward = np.array(
        [
            [shape_reward(q, c, 0.0, weights) for q, c in zip(qs, cs, strict=True)]
            for qs, cs in zip(quality, cost, strict=True)
        ]
    )
    return Matrix(
        prompt_ids=tuple(r.prompt_id for r in records),
        contexts=tuple(contexts),
        arms=names,
        reward=reward,
        quality=quality,
        cost_usd=cost,
        logging_pmf=np.array([logging_pmf(c) for c in contexts]),
    )


def simulate(
    matrix: Matrix, n: int, rng: np.random.Generator
) -> tuple[list[LoggedDecision], IntArray]:
    """``n`` logged decisions: shuffled passes over the prompts, arms drawn from the logging
    PMF. Returns the decisions and the prompt index of each."""
    prompts = len(matrix.contexts)
    passes = -(-n // prompts)
    order = np.concatenate([rng.permutation(prompts) for _ in range(passes)])[:n]
    cumulative = np.cumsum(matrix.logging_pmf[order], axis=1)
    draws = rng.random(n)[:, None]
    chosen = np.minimum((cumulative <= draws).sum(axis=1), len(matrix.arms) - 1)
    pmfs = [dict(zip(matrix.arms, map(float, row), strict=True)) for row in matrix.logging_pmf]
    decisions = []
    for i, (p, k) in enumerate(zip(order.tolist(), chosen.tolist(), strict=True)):
        decisions.append(
            LoggedDecision(
                decision_id=f"sim-{i}",
                context=matrix.contexts[p],
                chosen_arm=matrix.arms[k],
                probability=float(matrix.logging_pmf[p, k]),
                pmf=pmfs[p],
                reward=float(matrix.reward[p, k]),
                policy_name="simulated-logging",
                reward_source="simulated",
                outcome=Outcome(
                    quality=float(matrix.quality[p, k]),
                    cost_usd=float(matrix.cost_usd[p, k]),
                    latency_ms=0.0,
                ),
            )
        )
    return decisions, order


def matrix_log(matrix: Matrix) -> BanditLog:
    """One round per prompt (the logging policy's greedy arm): to ask targets for their
    probabilities on every prompt once."""
    decisions = []
    for p, context in enumerate(matrix.contexts):
        k = int(np.argmax(matrix.logging_pmf[p]))
        decisions.append(
            LoggedDecision(
                decision_id=f"prompt-{matrix.prompt_ids[p]}",
                context=context,
                chosen_arm=matrix.arms[k],
                probability=float(matrix.logging_pmf[p, k]),
                pmf=dict(zip(matrix.arms, map(float, matrix.logging_pmf[p]), strict=True)),
                reward=float(matrix.reward[p, k]),
            )
        )
    return BanditLog.from_decisions(decisions)


@dataclass(frozen=True)
class Target:
    name: str
    pmf: FloatArray
    """(prompts, K) probabilities, columns in matrix arm order."""
    true_value: float
    in_support: bool


def targets(matrix: Matrix, progress: Progress, seed: int) -> list[Target]:
    """The target policies, their probabilities on every prompt and their true values."""
    per_prompt = matrix_log(matrix)
    if per_prompt.arms != matrix.arms:
        raise AssertionError("arm columns of the matrix and its log differ")
    train_decisions, _ = simulate(matrix, TRAIN_LOG_SIZE, np.random.default_rng([seed, TRAIN_SEED]))
    trained_name = "vw trained (cb_type dr, epsilon 0.05)"
    trained = train_policy(
        BanditLog.from_decisions(train_decisions),
        trained_name,
        PolicyConfig(exploration="epsilon", epsilon=0.05, cb_type="dr", seed=seed),
        progress=progress,
    )
    candidates: list[Candidate] = [
        StaticPolicy(f"always {STRONG_ARM}", (STRONG_ARM,)),
        StaticPolicy(f"always {CHEAP_CODE_ARM}", (CHEAP_CODE_ARM,)),
        TaskRulePolicy(
            f"rule code: {CHEAP_CODE_ARM}, else {STRONG_ARM}",
            {"code": CHEAP_CODE_ARM},
            STRONG_ARM,
        ),
        FrozenVWPolicy(trained_name, trained),
        SupportRestricted(
            "vw trained, restricted to explored arms", FrozenVWPolicy(trained_name, trained)
        ),
        StaticPolicy(f"always {UNEXPLORED_ARM} (unexplored)", (UNEXPLORED_ARM,)),
    ]
    out = []
    try:
        for candidate in candidates:
            pmf = candidate.probabilities(per_prompt, progress)
            unsupported = float((pmf * (matrix.logging_pmf == 0)).sum())
            out.append(
                Target(
                    name=candidate.name,
                    pmf=pmf,
                    true_value=float((pmf * matrix.reward).sum(axis=1).mean()),
                    in_support=unsupported == 0.0,
                )
            )
    finally:
        trained.close()
    return out


@dataclass(frozen=True)
class RunResult:
    estimator: str
    n_logged: int
    policy: str
    seed: int
    estimate: float
    low: float
    high: float


def run_once(
    matrix: Matrix,
    goals: Sequence[Target],
    n: int,
    seed: int,
    config: EvaluationConfig,
) -> list[RunResult]:
    """Simulate one log of ``n`` decisions and estimate every target on it."""
    rng = np.random.default_rng([seed, n])
    decisions, order = simulate(matrix, n, rng)
    log = BanditLog.from_decisions(decisions)
    if log.arms != matrix.arms:
        raise AssertionError("arm columns of the simulated log and the matrix differ")
    pmfs = {goal.name: goal.pmf[order] for goal in goals}
    reward_hat = fit_reward_model(log, config.reward_model, rng)
    evaluation = score(log, pmfs, reward_hat, config, rng)
    return [
        RunResult(
            estimator=e.estimator,
            n_logged=n,
            policy=report.name,
            seed=seed,
            estimate=e.value,
            low=e.low,
            high=e.high,
        )
        for report in evaluation.candidates
        for e in report.estimates
    ]


def summarize(results: Sequence[RunResult], goals: Sequence[Target]) -> list[dict[str, Any]]:
    """One row per (estimator, n_logged, policy): medians over seeds."""
    by_goal = {goal.name: goal for goal in goals}
    groups: dict[tuple[str, int, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.estimator, result.n_logged, result.policy), []).append(result)
    rows = []
    for (estimator, n, policy), runs in groups.items():
        goal = by_goal[policy]
        truth = goal.true_value
        finite = [r for r in runs if np.isfinite(r.estimate)]
        errors = [abs(r.estimate - truth) / abs(truth) for r in finite]
        covered = [r.low <= truth <= r.high for r in finite if np.isfinite(r.low)]
        rows.append(
            {
                "estimator": estimator,
                "n_logged": n,
                "policy": policy,
                "estimate": statistics.median(r.estimate for r in finite) if finite else None,
                "true_value": truth,
                "relative_error": statistics.median(errors) if errors else None,
                "relative_error_max": max(errors) if errors else None,
                "ci_coverage": sum(covered) / len(covered) if covered else None,
                "seeds": len(runs),
                "in_support": goal.in_support,
            }
        )
    rows.sort(key=lambda r: (r["policy"], r["n_logged"], ESTIMATORS.index(r["estimator"])))
    return rows


def markdown(rows: Sequence[Mapping[str, Any]], setup: Mapping[str, Any]) -> str:
    """The validation table: median relative error per estimator, for each policy and n."""
    lines = [
        "# OPE validation against RouterBench ground truth",
        "",
        f"- {setup['prompts']} prompts x {len(setup['arms'])} arms; reward = correct - 0.3 x "
        "cost / $0.01 (clipped to [0, 1], no latency recorded)",
        f"- logging: {setup['logging']}",
        f"- {setup['seeds']} seeds per size; cells: median relative error |estimate - truth| / "
        "truth (max over seeds), then the 95% bootstrap interval's coverage of the truth",
        "",
        "| policy | true value | n logged | IPS | SNIPS | DM | DR |",
        "|---|---:|---:|---|---|---|---|",
    ]
    keyed = {(r["policy"], r["n_logged"], r["estimator"]): r for r in rows}
    seen: list[tuple[str, int]] = []
    for r in rows:
        if (r["policy"], r["n_logged"]) not in seen:
            seen.append((r["policy"], r["n_logged"]))
    for policy, n in seen:
        first = keyed[(policy, n, "ips")]
        cells = []
        for estimator in ESTIMATORS:
            row = keyed[(policy, n, estimator)]
            if row["relative_error"] is None:
                cells.append("n/a")
                continue
            coverage = row["ci_coverage"]
            covered = "" if coverage is None else f", {coverage:.0%}"
            cells.append(f"{row['relative_error']:.1%} ({row['relative_error_max']:.1%}{covered})")
        flag = "" if first["in_support"] else " **(no support)**"
        lines.append(
            f"| {policy}{flag} | {first['true_value']:.3f} | {n:,} | " + " | ".join(cells) + " |"
        )
    dr_max = [
        r["relative_error"]
        for r in rows
        if r["estimator"] == "dr" and r["in_support"] and r["n_logged"] == max(setup["sizes"])
    ]
    if dr_max:
        lines += [
            "",
            f"DR at {max(setup['sizes']):,} logged decisions, policies inside the logging "
            f"support: worst median relative error {max(dr_max):.1%}.",
        ]
    if setup.get("timing"):
        timing = setup["timing"]
        lines += [
            "",
            f"Replay timing: {timing['decisions']:,} logged decisions read from JSONL and "
            f"evaluated for {timing['candidates']} candidates with IPS/SNIPS/DM/DR and "
            f"{timing['resamples']} bootstrap resamples in {timing['seconds']:.1f} s.",
        ]
    return "\n".join(lines) + "\n"


def run_validation(args: argparse.Namespace) -> int:
    """``signalroute replay --validate``: write ``ope.json`` and ``ope.md`` under ``--out``."""
    started = time.perf_counter()
    if args.seeds < 1:
        raise ConfigError("--seeds must be >= 1")
    progress = TqdmProgress(enabled=not args.no_progress)
    data = args.data or ReplaySettings().data_path()
    dataset = load_routerbench(data)
    matrix = build_matrix(dataset, args.prompts, RewardWeights(), progress)
    goals = targets(matrix, progress, args.seed)
    config = EvaluationConfig(
        resamples=args.bootstrap, reward_model=RewardModelConfig(folds=args.folds)
    )
    results: list[RunResult] = []
    runs = [(n, seed) for n in args.sizes for seed in range(args.seed, args.seed + args.seeds)]
    progress.start("simulated logs", len(runs))
    for n, seed in runs:
        results += run_once(matrix, goals, n, seed, config)
        progress.advance()
    progress.finish()
    rows = summarize(results, goals)
    setup: dict[str, Any] = {
        "dataset": "routerbench",
        "prompts": len(matrix.contexts),
        "arms": list(matrix.arms),
        "sizes": list(args.sizes),
        "seeds": args.seeds,
        "resamples": args.bootstrap,
        "logging": (
            f"epsilon-greedy, epsilon {EPSILON}, greedy arm {CHEAP_CODE_ARM} when the top "
            f"category is code, else {CHEAP_DEFAULT_ARM}; {UNEXPLORED_ARM} never explored"
        ),
        "reward": "shape_reward(correct, cost_usd, 0, RewardWeights())",
        "targets": {
            goal.name: {"true_value": goal.true_value, "in_support": goal.in_support}
            for goal in goals
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    out: Path = args.out
    if args.timing:
        setup["timing"] = time_replay(matrix, args.timing, args, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "ope.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        (out / "ope_setup.json").write_text(json.dumps(setup, indent=2) + "\n", encoding="utf-8")
        (out / "ope.md").write_text(markdown(rows, setup), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the reports under {out}: {exc.strerror}") from None
    print((out / "ope.md").read_text(encoding="utf-8"), end="")
    print(f"\nvalidation took {setup['seconds']:.0f} s; reports in {out}/")
    return 0


def time_replay(matrix: Matrix, n: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Time ``signalroute replay`` end to end on ``n`` simulated decisions in a JSONL file:
    read, five candidates (logging, a static arm, the task rule, a frozen VW model and a
    progressive VW policy), IPS/SNIPS/DM/DR and the bootstrap."""
    decisions, _ = simulate(matrix, n, np.random.default_rng([args.seed, n, 1]))
    folder = Path(tempfile.mkdtemp(prefix="signalroute-timing-"))
    try:
        log_path = folder / "log.jsonl"
        write_log(log_path, decisions, "jsonl")
        del decisions
        model_path = folder / "trained.vw"
        train_decisions, _ = simulate(matrix, TRAIN_LOG_SIZE, np.random.default_rng([args.seed]))
        policy = train_policy(
            BanditLog.from_decisions(train_decisions),
            "trained",
            PolicyConfig(exploration="epsilon", epsilon=0.05, cb_type="dr"),
        )
        model_path.write_bytes(policy.state().model)
        policy.close()
        candidates = [
            "logging",
            f"always:{STRONG_ARM}",
            f"rule:code={CHEAP_CODE_ARM},*={STRONG_ARM}",
            f"model:{model_path}",
            "vw:exploration=epsilon,epsilon=0.05",
        ]
        argv = ["--input", str(log_path), "--out", str(out / "timing"), "--no-plot"]
        argv += ["--bootstrap", str(args.bootstrap), "--seed", str(args.seed)]
        if args.no_progress:
            argv.append("--no-progress")
        for candidate in candidates:
            argv += ["--candidate", candidate]
        parser = argparse.ArgumentParser(prog="signalroute replay")
        add_arguments(parser)
        started = time.perf_counter()
        code = run(parser.parse_args(argv))
        seconds = time.perf_counter() - started
        if code != 0:
            raise ConfigError(f"the timing replay failed with exit code {code}")
        print(
            f"replay of {n:,} logged decisions (JSONL, {len(candidates)} candidates): "
            f"{seconds:.1f} s"
        )
        return {
            "decisions": n,
            "candidates": len(candidates),
            "resamples": args.bootstrap,
            "seconds": round(seconds, 2),
            "log_bytes": log_path.stat().st_size,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
