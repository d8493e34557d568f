"""``signalroute replay``: evaluate candidate policies on logged decisions.

Reads the log (store or file), optionally exports it, builds the candidates, fits a
counterfactual policy when asked, runs every estimator and writes ``replay.json``,
``replay.md`` and ``replay.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from features.errors import ConfigError
from learner.config import PolicyConfig
from learner.ope.candidates import (
    Candidate,
    FrozenVWPolicy,
    LoggingPolicy,
    ProgressiveVWPolicy,
    StaticPolicy,
    SupportRestricted,
    TaskRulePolicy,
)
from learner.ope.estimators import ESTIMATORS, Estimator
from learner.ope.evaluation import Evaluation, EvaluationConfig, evaluate
from learner.ope.log import BanditLog, LoggedDecision
from learner.ope.progress import Progress
from learner.ope.reward_model import RewardModelConfig
from learner.ope.training import train_policy
from learner.vw_policy import VWPolicy
from router.explain import policy_from_snapshot
from router.settings import Settings
from router.tools.offline_eval.loading import (
    LoadedLog,
    LogFilters,
    format_of,
    open_store,
    read_log,
    read_store,
    write_log,
)
from router.tools.offline_eval.progress import TqdmProgress
from router.tools.offline_eval.report import evaluation_json, evaluation_markdown, plot_evaluation
from router.tools.offline_eval.specs import (
    CandidateSpec,
    DeployedSpec,
    LoggingSpec,
    ModelSpec,
    RuleSpec,
    StaticSpec,
    SupportedSpec,
    VWSpec,
    parse_candidate,
    parse_vw_options,
)
from store import snapshots

DEFAULT_HOLDOUT = 0.3


def settings_of(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    return Settings(**overrides)  # type: ignore[arg-type]


def base_config(settings: Settings, seed: int) -> PolicyConfig:
    """The service's policy settings: what ``vw:`` and ``--train`` options override."""
    return PolicyConfig(
        exploration=settings.exploration,
        epsilon=settings.epsilon,
        gamma_scale=settings.gamma_scale,
        learning_rate=settings.learning_rate,
        seed=seed,
    )


def evaluation_config(args: argparse.Namespace) -> EvaluationConfig:
    names = [name.strip().lower() for name in args.estimators.split(",") if name.strip()]
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown or not names:
        raise ConfigError(
            f"--estimators: unknown {', '.join(unknown) or '(none)'}; use {','.join(ESTIMATORS)}"
        )
    try:
        return EvaluationConfig(
            estimators=tuple(cast(Estimator, name) for name in names),
            resamples=args.bootstrap,
            level=args.level,
            min_propensity=args.min_propensity,
            reward_model=RewardModelConfig(folds=args.folds),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_candidates(
    specs: Sequence[CandidateSpec],
    *,
    warm_start: Sequence[LoggedDecision],
    deployed: VWPolicy | None,
) -> list[Candidate]:
    """Candidates for ``specs``; ``vw:`` ones learn ``warm_start`` before the scored rounds."""
    out: list[Candidate] = []
    for spec in specs:
        if isinstance(spec, SupportedSpec):
            (inner,) = build_candidates([spec.inner], warm_start=warm_start, deployed=deployed)
            out.append(SupportRestricted(spec.name, inner))
        elif isinstance(spec, LoggingSpec):
            out.append(LoggingPolicy(spec.name))
        elif isinstance(spec, StaticSpec):
            out.append(StaticPolicy(spec.name, spec.preferences))
        elif isinstance(spec, RuleSpec):
            out.append(TaskRulePolicy(spec.name, spec.rules, spec.default))
        elif isinstance(spec, VWSpec):
            out.append(ProgressiveVWPolicy(spec.name, spec.config, spec.weights, warm_start))
        elif isinstance(spec, DeployedSpec):
            if deployed is None:
                raise ConfigError("candidate 'deployed': the store holds no snapshot to load")
            out.append(FrozenVWPolicy(spec.name, deployed))
        elif isinstance(spec, ModelSpec):
            try:
                model = spec.path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read model {spec.path}: {exc.strerror}") from None
            config = PolicyConfig()
            out.append(FrozenVWPolicy(spec.name, VWPolicy(spec.name, config, model=model)))
    return out


@dataclass(frozen=True)
class _StoreRead:
    loaded: LoadedLog | None
    deployed: VWPolicy | None
    database: str


async def _read_store(
    settings: Settings,
    filters: LogFilters,
    *,
    logs: bool,
    snapshot_name: str | None,
    progress: Progress,
) -> _StoreRead:
    async with AsyncExitStack() as stack:
        database = await open_store(settings, stack)
        loaded = await read_store(database, filters, progress) if logs else None
        deployed = None
        if snapshot_name is not None:
            async with database.connection() as conn:
                snapshot = await snapshots.latest_snapshot(conn, snapshot_name)
            if snapshot is None:
                raise ConfigError(
                    f"candidate 'deployed': no snapshot of policy {snapshot_name!r} in the "
                    "store yet (the service snapshots every SIGNALROUTE_SNAPSHOT_EVERY "
                    "updates and at shutdown)"
                )
            deployed = policy_from_snapshot(snapshot_name, snapshot.model, dict(snapshot.meta))
        return _StoreRead(loaded=loaded, deployed=deployed, database=database.url)


def _uses_deployed(spec: CandidateSpec) -> bool:
    if isinstance(spec, SupportedSpec):
        return _uses_deployed(spec.inner)
    return isinstance(spec, DeployedSpec)


def _filters(args: argparse.Namespace) -> LogFilters:
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be >= 1")
    return LogFilters(
        since=args.since,
        until=args.until,
        stage=args.stage,
        tenant=args.tenant,
        limit=args.limit,
        reward_source=args.reward_source,
    )


def run(args: argparse.Namespace) -> int:
    """The command (without ``--validate``, which ``validate.run_validation`` runs); returns
    the exit code. Raises SignalrouteError for what the user can fix."""
    # A large log is millions of small objects that live until the end: the cyclic garbage
    # collector would traverse them again and again (it cost a third of a 100k replay).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        gc.unfreeze()
        if collecting:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    progress = TqdmProgress(enabled=not args.no_progress)
    settings = settings_of(args)
    base = base_config(settings, args.seed)
    filters = _filters(args)
    texts = args.candidate or (["logging"] if args.input else ["logging", "deployed"])
    specs = [parse_candidate(text, base) for text in texts]
    if len({spec.name for spec in specs}) != len(specs):
        raise ConfigError("each --candidate must be given once")
    wants_deployed = any(_uses_deployed(spec) for spec in specs) and not args.export
    source: str
    deployed: VWPolicy | None = None
    if args.input is None or wants_deployed:
        read = asyncio.run(
            _read_store(
                settings,
                filters,
                logs=args.input is None,
                snapshot_name=(args.policy_name or args.stage) if wants_deployed else None,
                progress=progress,
            )
        )
        deployed = read.deployed
        source = f"store {read.database}"
    if args.input is not None:
        fmt = format_of(args.input, args.input_format)
        loaded = read_log(args.input, fmt, filters, progress)
        source = f"{fmt} file {args.input}"
    else:
        assert read.loaded is not None
        loaded = read.loaded
    gc.freeze()
    gc.enable()
    loaded_at = time.perf_counter()

    if args.export is not None:
        fmt = format_of(args.export, args.export_format)
        count = write_log(args.export, loaded.decisions, fmt)
        print(f"exported {count} decisions ({fmt}) to {args.export}")
        return 0
    if not loaded.decisions:
        raise ConfigError(
            f"no logged decisions with a reward in {source} match the filters "
            f"(stage {filters.stage!r}; {loaded.without_reward} without a reward)"
        )
    try:
        evaluation, setup = _evaluate(args, loaded, specs, deployed, base, progress)
    finally:
        if deployed is not None:
            deployed.close()
    elapsed = time.perf_counter() - started
    setup_json = {
        "source": source,
        "stage": filters.stage,
        "filters": {
            "since": filters.since.isoformat() if filters.since else None,
            "until": filters.until.isoformat() if filters.until else None,
            "tenant": filters.tenant,
            "limit": filters.limit,
            "reward_source": filters.reward_source,
        },
        "reward": "latest reward of each decision"
        + (f" from source {filters.reward_source!r}" if filters.reward_source else ""),
        "without_reward": loaded.without_reward,
        **setup,
        "seed": args.seed,
        "seconds_read": round(loaded_at - started, 3),
        "seconds_total": round(elapsed, 3),
    }
    _write_reports(args.out, evaluation, setup_json, plot=not args.no_plot)
    print((args.out / "replay.md").read_text(encoding="utf-8"), end="")
    print(
        f"\nreplayed {evaluation.n} logged decisions for {len(evaluation.candidates)} candidates "
        f"in {elapsed:.1f} s (reading {loaded_at - started:.1f} s); reports in {args.out}/"
    )
    return 0


def _evaluate(
    args: argparse.Namespace,
    loaded: LoadedLog,
    specs: Sequence[CandidateSpec],
    deployed: VWPolicy | None,
    base: PolicyConfig,
    progress: Progress,
) -> tuple[Evaluation, dict[str, Any]]:
    log = BanditLog.from_decisions(loaded.decisions)
    holdout = args.holdout or (DEFAULT_HOLDOUT if args.train else None)
    setup: dict[str, Any] = {"candidates": [spec.name for spec in specs]}
    warm_start: Sequence[LoggedDecision] = ()
    train_log = None
    if holdout is not None:
        try:
            train_log, log = log.split(holdout)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        warm_start = train_log.decisions
        setup["holdout"] = {"fraction": holdout, "train": len(train_log), "evaluated": len(log)}
    candidates = build_candidates(specs, warm_start=warm_start, deployed=deployed)
    trained: VWPolicy | None = None
    try:
        if args.train:
            assert train_log is not None
            spec = parse_vw_options(args.train, replace_cb_type(base), f"trained({args.train})")
            try:
                trained = train_policy(
                    train_log,
                    spec.name,
                    spec.config,
                    passes=spec.passes,
                    weights=spec.weights,
                    progress=progress,
                )
            except ValueError as exc:
                raise ConfigError(f"--train: {exc}") from None
            candidates.append(FrozenVWPolicy(spec.name, trained))
            setup["trained"] = {
                "name": spec.name,
                "vw_args": spec.config.vw_args(),
                "passes": spec.passes,
                "train_decisions": len(train_log),
            }
            if args.save_model is not None:
                _save_model(trained, args.save_model)
                setup["trained"]["model"] = str(args.save_model)
        config = evaluation_config(args)
        try:
            evaluation = evaluate(
                log, candidates, config, np.random.default_rng(args.seed), progress
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    finally:
        if trained is not None:
            trained.close()
    return evaluation, setup


def replace_cb_type(base: PolicyConfig) -> PolicyConfig:
    """Counterfactual training defaults to the doubly robust ``--cb_type dr``."""
    return replace(base, cb_type="dr")


def _save_model(policy: VWPolicy, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(policy.state().model)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def _write_reports(out: Path, evaluation: Evaluation, setup: dict[str, Any], *, plot: bool) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "replay.json").write_text(
            json.dumps(evaluation_json(evaluation, setup), indent=2) + "\n", encoding="utf-8"
        )
        lines = [
            f"source: {setup['source']} (stage {setup['stage']!r}); reward: {setup['reward']}",
        ]
        if "holdout" in setup:
            h = setup["holdout"]
            lines.append(
                f"held out: the last {h['evaluated']} decisions ({h['fraction']:.0%}); "
                f"trained / warmed up on the first {h['train']}"
            )
        if "trained" in setup:
            lines.append(f"trained policy: `{setup['trained']['vw_args']}`")
        (out / "replay.md").write_text(evaluation_markdown(evaluation, lines), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the reports under {out}: {exc.strerror}") from None
    if plot:
        plot_evaluation(
            evaluation, out / "replay.png", f"{evaluation.n} logged decisions: {setup['source']}"
        )
