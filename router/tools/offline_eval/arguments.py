"""The options of ``signalroute replay`` (argparse only: importing this module is cheap)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.astimezone()


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers like 1000,5000") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError("each size must be >= 2")
    return sizes


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError("must be in (0, 1)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the replay options on ``parser``."""
    source = parser.add_argument_group("logged decisions (default: the service's store)")
    source.add_argument("--input", type=Path, help="read a JSONL or DSJSON export instead")
    source.add_argument("--input-format", choices=("jsonl", "dsjson"))
    source.add_argument("--database-url", help="Postgres URL (default SIGNALROUTE_DATABASE_URL)")
    source.add_argument(
        "--data-dir", type=Path, help="embedded server's data dir (default SIGNALROUTE_DATA_DIR)"
    )
    source.add_argument("--since", type=_moment, help="decisions made at or after (ISO 8601)")
    source.add_argument("--until", type=_moment, help="decisions made before (ISO 8601)")
    source.add_argument("--stage", default="pre", help="lifecycle stage (default pre)")
    source.add_argument("--tenant", help="only this tenant's requests (store only)")
    source.add_argument("--limit", type=int, help="at most this many decisions, oldest first")
    source.add_argument(
        "--reward-source", help="score by the latest reward of this source (default: latest)"
    )

    evaluate = parser.add_argument_group("candidates and estimators")
    evaluate.add_argument(
        "--candidate",
        action="append",
        metavar="SPEC",
        help="policy to evaluate (repeat): logging, deployed, uniform, always:ARM, "
        "prefer:ARM,..., rule:CATEGORY=ARM,...,*=ARM, vw:KEY=VALUE,..., model:PATH "
        "(default: logging and deployed)",
    )
    evaluate.add_argument(
        "--policy-name", help="snapshot name of the deployed policy (default: the stage)"
    )
    evaluate.add_argument("--estimators", default="ips,snips,dm,dr", help="comma-separated")
    evaluate.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples")
    evaluate.add_argument("--level", type=_fraction, default=0.95, help="interval level")
    evaluate.add_argument(
        "--min-propensity",
        type=_fraction,
        default=0.01,
        help="logging probabilities below this are flagged as barely explored",
    )
    evaluate.add_argument("--folds", type=int, default=2, help="reward-model cross-fitting")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of every random draw")

    train = parser.add_argument_group("counterfactual training")
    train.add_argument(
        "--train",
        metavar="KEY=VALUE,...",
        help="fit a VW policy on the first part of the log (e.g. cb_type=dr,epsilon=0.05) "
        "and evaluate it with the candidates on the held-out rest",
    )
    train.add_argument(
        "--holdout",
        type=_fraction,
        help="evaluate on the last fraction of the log (default 0.3 with --train)",
    )
    train.add_argument("--save-model", type=Path, help="write the trained VW model here")

    output = parser.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, default=Path("signalroute-replay"), help="report folder"
    )
    output.add_argument("--export", type=Path, help="write the logged decisions here and stop")
    output.add_argument("--export-format", choices=("jsonl", "dsjson"))
    output.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    output.add_argument("--no-progress", action="store_true", help="no progress bars")

    validate = parser.add_argument_group("validation against a routing matrix's ground truth")
    validate.add_argument(
        "--validate", action="store_true", help="simulate logs on a matrix and score estimators"
    )
    validate.add_argument("--dataset", default="routerbench", choices=("routerbench",))
    validate.add_argument(
        "--data", type=Path, help="RouterBench folder (default SIGNALROUTE_REPLAY_DATA)"
    )
    validate.add_argument(
        "--sizes", type=_sizes, default=(1000, 5000, 20000), help="logged decisions per run"
    )
    validate.add_argument("--seeds", type=int, default=5, help="runs per size (medians)")
    validate.add_argument("--prompts", type=int, help="use only this many prompts (a subset)")
    validate.add_argument(
        "--timing",
        type=int,
        default=0,
        metavar="N",
        help="also time a full replay of N simulated decisions read from a JSONL file",
    )
