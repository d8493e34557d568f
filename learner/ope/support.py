"""Where a candidate leaves the logging policy's support.

Importance weighting only sees arms the logging policy could draw. Mass a candidate puts on
an arm the log gave probability 0 is invisible to IPS and SNIPS (they score it as reward 0
and renormalise it away) and left to the reward model's extrapolation in DM and DR. Mass on
arms drawn with a tiny probability is visible but makes the estimates swing on a handful of
rounds. Both are reported, with the arms the candidate would pick that the log never drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learner.ope.log import BanditLog, FloatArray

DEFAULT_MIN_PROPENSITY = 0.01
"""Logging probabilities below this count as barely explored."""

MIN_EXPECTED_PICKS = 1.0
"""A candidate "picks" an arm when it would draw it at least this many times on the log."""


@dataclass(frozen=True)
class SupportReport:
    """``unsupported_mass``: the candidate's average probability on arms the log gave 0;
    ``low_propensity_mass``: on arms the log gave less than ``min_propensity``;
    ``unexplored_arms``: arms the candidate picks that the log never drew."""

    unsupported_mass: float
    low_propensity_mass: float
    min_propensity: float
    unexplored_arms: tuple[str, ...]

    @property
    def supported(self) -> bool:
        """Whether every arm the candidate plays was explored by the logging policy."""
        return self.unsupported_mass == 0.0 and not self.unexplored_arms

    def warnings(self) -> tuple[str, ...]:
        """One sentence per problem, for reports."""
        out: list[str] = []
        if self.unsupported_mass > 0.0:
            out.append(
                f"{self.unsupported_mass:.1%} of its probability is on arms the logging policy "
                "never explored (probability 0): IPS/SNIPS cannot see them, DM/DR extrapolate"
            )
        if self.unexplored_arms:
            out.append("it picks arms never drawn in the log: " + ", ".join(self.unexplored_arms))
        if self.low_propensity_mass > 0.0:
            out.append(
                f"{self.low_propensity_mass:.1%} of its probability is on arms logged with "
                f"probability < {self.min_propensity:g}: high-variance estimates"
            )
        return tuple(out)


def check_support(
    log: BanditLog, target_pmf: FloatArray, min_propensity: float = DEFAULT_MIN_PROPENSITY
) -> SupportReport:
    """Compare a candidate's (n, K) probabilities with the logging policy's."""
    if len(log) == 0:
        return SupportReport(0.0, 0.0, min_propensity, ())
    zero = log.eligible & (log.logging_pmf <= 0.0)
    low = log.eligible & (log.logging_pmf > 0.0) & (log.logging_pmf < min_propensity)
    unsupported = float(np.where(zero, target_pmf, 0.0).sum(axis=1).mean())
    low_mass = float(np.where(low, target_pmf, 0.0).sum(axis=1).mean())
    drawn = np.bincount(log.chosen, minlength=len(log.arms))
    picks = target_pmf.sum(axis=0)
    unexplored = tuple(
        arm for k, arm in enumerate(log.arms) if drawn[k] == 0 and picks[k] >= MIN_EXPECTED_PICKS
    )
    return SupportReport(
        unsupported_mass=unsupported if unsupported > 1e-12 else 0.0,
        low_propensity_mass=low_mass if low_mass > 1e-12 else 0.0,
        min_propensity=min_propensity,
        unexplored_arms=unexplored,
    )
