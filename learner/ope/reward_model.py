"""The direct model DM and DR need: a predicted reward for every (round, arm).

One ridge regression per arm, on the round's shared features and that arm's own features
(numbers as they are, strings one-hot), fitted on the rounds where the arm was drawn. It is
the classic direct method (a regression per action), pure numpy, and fast enough for 100k
rounds in seconds. Features are standardised on the training rows; an arm drawn fewer than
``min_rows`` times predicts its mean training reward (or the overall mean if never drawn).

Cross-fitting: the rounds are split at random into ``folds`` parts and each part is
predicted by models fitted on the other parts, so a round's own reward never feeds its
prediction (which would bias DR towards the logged arm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learner.context import Namespace
from learner.ope.log import BanditLog, FloatArray
from learner.ope.progress import SILENT, Progress


@dataclass(frozen=True)
class RewardModelConfig:
    """``folds`` >= 2 cross-fitting parts; ``ridge`` penalty on standardised features."""

    folds: int = 2
    ridge: float = 1.0
    min_rows: int = 5

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("folds must be >= 2: a round's reward must not predict itself")
        if self.ridge <= 0:
            raise ValueError("ridge must be positive")
        if self.min_rows < 1:
            raise ValueError("min_rows must be >= 1")


class _Vocabulary:
    """Feature name -> column, grown as rows are read; entries kept sparse until assembled.

    A namespace's (columns, values) are remembered by content: logged contexts repeat most
    namespaces (an arm's identity, a healthy arm's system signals) on every decision.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.values: list[float] = []
        self._memo: dict[
            tuple[str, tuple[tuple[str, float | str], ...]], tuple[list[int], list[float]]
        ] = {}

    def add(self, row: int, namespace: str, values: Namespace) -> None:
        key = (namespace, tuple(values.items()))
        entry = self._memo.get(key)
        if entry is None:
            entry = self._memo[key] = self._entries(namespace, values)
        cols, numbers = entry
        self.rows.extend([row] * len(cols))
        self.cols.extend(cols)
        self.values.extend(numbers)

    def _entries(self, namespace: str, values: Namespace) -> tuple[list[int], list[float]]:
        cols: list[int] = []
        numbers: list[float] = []
        for name, value in values.items():
            if isinstance(value, str):
                key, number = f"{namespace}|{name}={value}", 1.0
            else:
                key, number = f"{namespace}|{name}", float(value)
            if number == 0.0 or not np.isfinite(number):
                continue
            cols.append(self.index.setdefault(key, len(self.index)))
            numbers.append(number)
        return cols, numbers

    def matrix(self, n: int) -> FloatArray:
        out = np.zeros((n, max(1, len(self.index))))
        out[np.asarray(self.rows, dtype=np.int64), np.asarray(self.cols, dtype=np.int64)] = (
            self.values
        )
        return out


def featurize(log: BanditLog) -> tuple[FloatArray, list[FloatArray]]:
    """The shared feature matrix (n, d) and, per arm column, that arm's features (n, d_k)."""
    shared = _Vocabulary()
    per_arm = [_Vocabulary() for _ in log.arms]
    for i, decision in enumerate(log.decisions):
        for namespace, values in decision.context.shared.items():
            shared.add(i, namespace, values)
        for j, arm in enumerate(decision.context.arms):
            vocabulary = per_arm[int(log.columns[i][j])]
            for namespace, values in arm.namespaces.items():
                vocabulary.add(i, namespace, values)
    n = len(log)
    return shared.matrix(n), [vocabulary.matrix(n) for vocabulary in per_arm]


def _ridge_predict(
    x_train: FloatArray, y_train: FloatArray, x_test: FloatArray, penalty: float
) -> FloatArray:
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale[scale == 0] = 1.0
    xs = (x_train - mean) / scale
    offset = float(y_train.mean())
    gram = xs.T @ xs + penalty * np.eye(xs.shape[1])
    beta = np.linalg.solve(gram, xs.T @ (y_train - offset))
    prediction: FloatArray = offset + ((x_test - mean) / scale) @ beta
    return prediction


def fit_reward_model(
    log: BanditLog,
    config: RewardModelConfig,
    rng: np.random.Generator,
    progress: Progress = SILENT,
) -> FloatArray:
    """(n, K) cross-fitted predicted rewards in [0, 1]; 0 on arms that were not eligible."""
    n, k_arms = len(log), len(log.arms)
    reward_hat = np.zeros((n, k_arms))
    if n == 0:
        return reward_hat
    progress.start("reward model", 1 + config.folds * k_arms)
    try:
        shared, per_arm = featurize(log)
        progress.advance()
        fold_of = rng.permutation(n) % config.folds
        for fold in range(config.folds):
            train = fold_of != fold
            test = ~train
            fallback = float(log.reward[train].mean()) if train.any() else 0.5
            for k in range(k_arms):
                fit_rows = train & (log.chosen == k)
                predict_rows = test & log.eligible[:, k]
                progress.advance()
                if not predict_rows.any():
                    continue
                count = int(fit_rows.sum())
                if count < config.min_rows:
                    value = float(log.reward[fit_rows].mean()) if count else fallback
                    reward_hat[predict_rows, k] = value
                    continue
                features = np.hstack([shared, per_arm[k]])
                reward_hat[predict_rows, k] = _ridge_predict(
                    features[fit_rows],
                    log.reward[fit_rows],
                    features[predict_rows],
                    config.ridge,
                )
    finally:
        progress.finish()
    np.clip(reward_hat, 0.0, 1.0, out=reward_hat)
    reward_hat[~log.eligible] = 0.0
    return reward_hat
