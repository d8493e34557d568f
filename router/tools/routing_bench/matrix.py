"""The routing matrix: what every model did on every prompt, the benchmark's one input.

A matrix holds, per prompt (row) and model (column), the recorded quality in [0, 1] and the
USD actually billed, optionally the model's answer text and latency. Each prompt belongs to
the ``train`` or the ``test`` split. Adapters (``router.tools.routing_bench.datasets``) and the
long-table reader (``router.tools.routing_bench.tables``) build one; everything downstream is
pure arithmetic on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from features.errors import ConfigError

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

CHARS_PER_TOKEN = 4
"""The benchmark's token estimate: four characters a token (as the provider client's)."""


@dataclass(frozen=True)
class Prompt:
    """One recorded prompt: its id, text, task (category) and split; ``tools``: the functions
    it offered (OpenAI format), sent with it as the request's ``tools``."""

    prompt_id: str
    text: str
    task: str
    split: Split
    tools: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Price:
    """A model's list price in USD per million tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def usd(self, input_tokens: float, output_tokens: float) -> float:
        return (
            input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok
        ) / 1e6


@dataclass(frozen=True, eq=False)
class RoutingMatrix:
    """Recorded outcomes: ``quality[i, j]`` and ``cost_usd[i, j]`` of model ``j`` on prompt ``i``.

    ``responses`` (same shape, or None) holds the recorded answers; without them every
    answer is a placeholder naming the model and prompt (``response``), which is all the
    judge and the validators then see. ``prices`` has every model's list price (given by the
    adapter, else derived from the recorded costs by ``derive_prices``). ``judge_model`` is
    the model the simulated judge is billed as. ``dropped`` counts source prompts left out
    because some model had no record of them.
    """

    name: str
    models: tuple[str, ...]
    prompts: tuple[Prompt, ...]
    quality: FloatArray
    cost_usd: FloatArray
    prices: Mapping[str, Price]
    judge_model: str
    responses: tuple[tuple[str, ...], ...] | None = None
    latency_ms: FloatArray | None = None
    dropped: int = 0
    _rows: Mapping[Split, IndexArray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shape = (len(self.prompts), len(self.models))
        if not self.models or not self.prompts:
            raise ValueError("a routing matrix needs at least one model and one prompt")
        if len(set(self.models)) != len(self.models):
            raise ValueError("model names must be unique")
        if len({p.prompt_id for p in self.prompts}) != len(self.prompts):
            raise ValueError("prompt ids must be unique")
        for label, values in (("quality", self.quality), ("cost_usd", self.cost_usd)):
            if values.shape != shape:
                raise ValueError(f"{label} has shape {values.shape}, expected {shape}")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{label} holds a missing or non-finite value")
        if np.any((self.quality < 0) | (self.quality > 1)):
            raise ValueError("quality must lie in [0, 1]")
        if np.any(self.cost_usd < 0):
            raise ValueError("cost_usd must be >= 0")
        if self.latency_ms is not None and self.latency_ms.shape != shape:
            raise ValueError(f"latency_ms has shape {self.latency_ms.shape}, expected {shape}")
        if self.responses is not None and (
            len(self.responses) != shape[0] or any(len(r) != shape[1] for r in self.responses)
        ):
            raise ValueError("responses must hold one answer per prompt and model")
        missing = [m for m in self.models if m not in self.prices]
        if missing:
            raise ValueError(f"no price for {', '.join(missing)}")
        if self.judge_model not in self.models:
            raise ValueError(f"the judge model {self.judge_model!r} is not in the matrix")
        rows = {
            split: np.flatnonzero([p.split == split for p in self.prompts]).astype(np.intp)
            for split in SPLITS
        }
        object.__setattr__(self, "_rows", rows)

    def rows(self, split: Split) -> IndexArray:
        """Row indices of one split, in matrix order."""
        return self._rows[split]

    def column(self, model: str) -> int:
        """The column of ``model``; KeyError when the matrix has no such model."""
        try:
            return self.models.index(model)
        except ValueError:
            raise KeyError(model) from None

    def response(self, row: int, column: int) -> str:
        """The recorded answer, or a placeholder when the matrix holds no text."""
        if self.responses is not None:
            return self.responses[row][column]
        return placeholder(self.models[column], self.prompts[row].prompt_id)

    def billed(self, row: int, column: int, sent: str) -> float:
        """What model ``column`` costs for sending ``sent`` in place of the recorded prompt of
        ``row``: the recorded cost plus the extra characters at its list input price."""
        extra_tokens = max(0, len(sent) - len(self.prompts[row].text)) / CHARS_PER_TOKEN
        price = self.prices[self.models[column]]
        return float(self.cost_usd[row, column]) + price.usd(extra_tokens, 0.0)

    def latency(self, row: int, column: int) -> float:
        """Recorded latency in ms (0 when none was recorded)."""
        return 0.0 if self.latency_ms is None else float(self.latency_ms[row, column])

    def mean_cost(self, split: Split) -> FloatArray:
        """Each model's mean cost per prompt on a split."""
        return np.asarray(self.cost_usd[self.rows(split)].mean(axis=0), dtype=np.float64)

    def mean_quality(self, split: Split) -> FloatArray:
        """Each model's mean quality on a split."""
        return np.asarray(self.quality[self.rows(split)].mean(axis=0), dtype=np.float64)

    def best_single(self, split: Split = "train") -> int:
        """The column of the best single model on ``split`` (cheaper first on ties)."""
        return self.best_on(self.rows(split))

    def best_on(self, rows: IndexArray) -> int:
        """The column of the best single model on ``rows`` (cheaper first on ties)."""
        quality = self.quality[rows].mean(axis=0)
        cost = self.cost_usd[rows].mean(axis=0)
        return int(np.lexsort((cost, -quality))[0])


def placeholder(model: str, prompt_id: str) -> str:
    """The answer text used when no text was recorded: unique per (model, prompt)."""
    return f"(recorded answer of {model} to prompt {prompt_id}; no text was recorded)"


def assign_splits(
    prompt_ids: Sequence[str], *, test_fraction: float, seed: int
) -> dict[str, Split]:
    """A seeded split of prompt ids: ``round(n * test_fraction)`` of them go to test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must lie strictly between 0 and 1")
    order = np.random.default_rng(seed).permutation(len(prompt_ids))
    n_test = round(len(prompt_ids) * test_fraction)
    test = {int(i) for i in order[:n_test]}
    return {pid: ("test" if i in test else "train") for i, pid in enumerate(prompt_ids)}


def derive_prices(
    models: Sequence[str],
    prompts: Sequence[Prompt],
    cost_usd: FloatArray,
    responses: Sequence[Sequence[str]] | None,
) -> dict[str, Price]:
    """One blended price per model (input = output) that reproduces its recorded total cost
    from the estimated tokens of prompts and answers; used when no list price is given.

    Prices feed the arm features and the cost estimate of cut runs and longer prompts.
    """
    prompt_tokens = np.array([len(p.text) / CHARS_PER_TOKEN for p in prompts])
    prices: dict[str, Price] = {}
    for j, model in enumerate(models):
        answer_tokens = (
            np.array([len(r[j]) / CHARS_PER_TOKEN for r in responses])
            if responses is not None
            else np.zeros(len(prompts))
        )
        tokens = float(np.sum(prompt_tokens + answer_tokens))
        per_mtok = float(np.sum(cost_usd[:, j])) / tokens * 1e6 if tokens > 0 else 0.0
        per_mtok = per_mtok if math.isfinite(per_mtok) else 0.0
        prices[model] = Price(per_mtok, per_mtok)
    return prices


def take(
    matrix: RoutingMatrix, rows: Sequence[int], splits: Sequence[Split] | None = None
) -> RoutingMatrix:
    """The matrix restricted to ``rows`` (in that order), optionally with new splits."""
    index = np.asarray(rows, dtype=np.intp)
    prompts = [matrix.prompts[i] for i in index]
    if splits is not None:
        prompts = [replace(p, split=s) for p, s in zip(prompts, splits, strict=True)]
    return RoutingMatrix(
        name=matrix.name,
        models=matrix.models,
        prompts=tuple(prompts),
        quality=matrix.quality[index],
        cost_usd=matrix.cost_usd[index],
        prices=matrix.prices,
        judge_model=matrix.judge_model,
        responses=None if matrix.responses is None else tuple(matrix.responses[i] for i in index),
        latency_ms=None if matrix.latency_ms is None else matrix.latency_ms[index],
        dropped=matrix.dropped,
    )


def default_judge(models: Sequence[str], quality: FloatArray, cost: FloatArray) -> str:
    """The judge a matrix without one gets, from per-prompt ``quality`` and ``cost`` (train):
    the cheapest model of at least median quality among the models other than the best
    single one (a capable, cheap grader; its accuracy is simulated anyway). The best model
    itself only when it is the only one: on a strong/weak pair the judge is the weak model,
    not a verdict as dear as the best answer."""
    mean_q, mean_c = quality.mean(axis=0), cost.mean(axis=0)
    best = int(np.lexsort((mean_c, -mean_q))[0])
    others = [j for j in range(len(models)) if j != best] or [best]
    median = float(np.median(mean_q[others]))
    capable = [j for j in others if mean_q[j] >= median]
    return models[min(capable, key=lambda j: (mean_c[j], models[j]))]


def restrict(matrix: RoutingMatrix, models: Sequence[str]) -> RoutingMatrix:
    """The matrix with only ``models`` (in that order): a sub-matrix. The judge stays the
    matrix's when it is among them, else ``default_judge`` picks one from the train split.
    Raises ConfigError naming unknown models."""
    unknown = [m for m in models if m not in matrix.models]
    if unknown:
        raise ConfigError(
            f"--models names models the matrix does not have: {', '.join(unknown)} "
            f"(it has {', '.join(matrix.models)})"
        )
    if not models:
        raise ConfigError("--models needs at least one model")
    columns = [matrix.models.index(m) for m in models]
    quality, cost = matrix.quality[:, columns], matrix.cost_usd[:, columns]
    judge = matrix.judge_model
    if judge not in models:
        train = matrix.rows("train")
        judge = default_judge(models, quality[train], cost[train])
    return RoutingMatrix(
        name=f"{matrix.name}[{','.join(models)}]",
        models=tuple(models),
        prompts=matrix.prompts,
        quality=np.ascontiguousarray(quality),
        cost_usd=np.ascontiguousarray(cost),
        prices={m: matrix.prices[m] for m in models},
        judge_model=judge,
        responses=None
        if matrix.responses is None
        else tuple(tuple(r[j] for j in columns) for r in matrix.responses),
        latency_ms=None if matrix.latency_ms is None else matrix.latency_ms[:, columns],
        dropped=matrix.dropped,
    )


def holdout(matrix: RoutingMatrix, *, fraction: float = 0.3, seed: int = 0) -> RoutingMatrix:
    """Train only, a seeded ``fraction`` of it relabelled ``test``: for choosing settings
    without ever looking at the real test split."""
    train = [int(i) for i in matrix.rows("train")]
    ids = [matrix.prompts[i].prompt_id for i in train]
    splits = assign_splits(ids, test_fraction=fraction, seed=seed)
    return take(matrix, train, [splits[pid] for pid in ids])


def sample(matrix: RoutingMatrix, n_prompts: int, *, seed: int = 0) -> RoutingMatrix:
    """A seeded random ``n_prompts`` of the matrix (in matrix order), splits kept."""
    if n_prompts >= len(matrix.prompts):
        return matrix
    chosen = np.sort(
        np.random.default_rng(seed).choice(len(matrix.prompts), n_prompts, replace=False)
    )
    return take(matrix, [int(i) for i in chosen])
