"""The off-policy estimators: IPS, SNIPS, DM and DR, and the effective sample size.

Notation, per logged round i: the logged arm ``a_i`` drawn with probability ``p_i``, its
reward ``r_i``; the candidate's probability of that arm ``pi_i``; the importance weight
``w_i = pi_i / p_i``; a reward model ``q(x_i, a)`` and its expectation under the candidate
``d_i = sum_a pi(a | x_i) q(x_i, a)``.

* IPS   ``mean(w r)``: unbiased when the logging policy covers the candidate's arms.
* SNIPS ``sum(w r) / sum(w)``: a ratio, slightly biased, much less variable.
* DM    ``mean(d)``: no weights, biased exactly as much as the reward model is wrong.
* DR    ``mean(d + w (r - q(x_i, a_i)))``: unbiased like IPS, less variable when q is good.

Each estimator is a ratio of two sums of per-round terms, so one table of terms per
candidate (``terms``) gives every estimate and every bootstrap replicate (``from_sums``).
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np

from learner.ope.log import BanditLog, FloatArray

Estimator = Literal["ips", "snips", "dm", "dr"]
ESTIMATORS: Final[tuple[Estimator, ...]] = ("ips", "snips", "dm", "dr")

TERM_COUNT: Final = 4
"""Columns of ``terms``: ``w r``, ``w``, ``d``, ``d + w (r - q)``."""


def importance_weights(log: BanditLog, target_pmf: FloatArray) -> FloatArray:
    """``w_i``: the candidate's probability of the logged arm over its logged probability."""
    rows = np.arange(len(log))
    weights: FloatArray = target_pmf[rows, log.chosen] / log.propensity
    return weights


def expected_reward(target_pmf: FloatArray, reward_hat: FloatArray) -> FloatArray:
    """``d_i``: the reward model's value of each round under the candidate."""
    direct: FloatArray = np.einsum("ik,ik->i", target_pmf, reward_hat)
    return direct


def terms(log: BanditLog, target_pmf: FloatArray, reward_hat: FloatArray | None) -> FloatArray:
    """The (n, 4) per-round terms of one candidate; DM and DR columns are NaN without a
    reward model."""
    weights = importance_weights(log, target_pmf)
    table = np.empty((len(log), TERM_COUNT))
    table[:, 0] = weights * log.reward
    table[:, 1] = weights
    if reward_hat is None:
        table[:, 2:] = np.nan
    else:
        direct = expected_reward(target_pmf, reward_hat)
        chosen_hat = reward_hat[np.arange(len(log)), log.chosen]
        table[:, 2] = direct
        table[:, 3] = direct + weights * (log.reward - chosen_hat)
    return table


def from_sums(sums: FloatArray, n: float | FloatArray, estimator: Estimator) -> FloatArray:
    """Estimates from column sums of ``terms`` (shape (..., 4)) over ``n`` rounds.

    SNIPS of a candidate with zero total weight (it never agrees with the log) is NaN.
    """
    if estimator == "ips":
        out: FloatArray = sums[..., 0] / n
    elif estimator == "snips":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(sums[..., 1] > 0, sums[..., 0] / sums[..., 1], np.nan)
    elif estimator == "dm":
        out = sums[..., 2] / n
    elif estimator == "dr":
        out = sums[..., 3] / n
    else:
        raise ValueError(f"unknown estimator {estimator!r}")
    return out


def estimate(table: FloatArray, estimator: Estimator) -> float:
    """One estimator's value from a candidate's ``terms``."""
    if len(table) == 0:
        raise ValueError("no logged decisions to estimate from")
    return float(from_sums(table.sum(axis=0), len(table), estimator))


def ips(log: BanditLog, target_pmf: FloatArray) -> float:
    return estimate(terms(log, target_pmf, None), "ips")


def snips(log: BanditLog, target_pmf: FloatArray) -> float:
    return estimate(terms(log, target_pmf, None), "snips")


def dm(log: BanditLog, target_pmf: FloatArray, reward_hat: FloatArray) -> float:
    return estimate(terms(log, target_pmf, reward_hat), "dm")


def dr(log: BanditLog, target_pmf: FloatArray, reward_hat: FloatArray) -> float:
    return estimate(terms(log, target_pmf, reward_hat), "dr")


def effective_sample_size(weights: FloatArray) -> float:
    """Kish's ``(sum w)^2 / sum w^2``: how many on-policy rounds the weighted log is worth.

    Equals n when every weight is equal; 0 when the candidate never agrees with the log.
    """
    square_sum = float(np.dot(weights, weights))
    if square_sum == 0.0:
        return 0.0
    return float(weights.sum()) ** 2 / square_sum
