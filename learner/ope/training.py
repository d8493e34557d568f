"""Counterfactual training: fit a new VW policy from logged decisions alone.

Each logged round is learned as VW's contextual-bandit label (arm, cost, probability):
``--cb_type ips`` weights the logged reward by the inverse propensity, ``--cb_type dr``
adds VW's internal reward regression (doubly robust). The result is a ``--cb_explore_adf``
policy that could be deployed as it is; evaluate it on rounds it did not learn from.
"""

from __future__ import annotations

from learner.config import PolicyConfig
from learner.ope.candidates import training_reward
from learner.ope.log import BanditLog
from learner.ope.progress import SILENT, Progress
from learner.reward import RewardWeights
from learner.vw_policy import VWPolicy


def train_policy(
    log: BanditLog,
    name: str,
    config: PolicyConfig,
    *,
    passes: int = 1,
    weights: RewardWeights | None = None,
    progress: Progress = SILENT,
) -> VWPolicy:
    """A policy with ``config`` trained on the rounds of ``log`` (in order, ``passes`` times).

    The caller owns the returned policy (``close`` it). Rewards are the logged ones, or
    the logged outcomes re-shaped with ``weights``.
    """
    if passes < 1:
        raise ValueError("passes must be >= 1")
    lines = log.formatted(progress)
    policy = VWPolicy(name, config)
    progress.start(f"{name}: train", passes * len(log))
    try:
        for _ in range(passes):
            for formatted, decision in zip(lines, log.decisions, strict=True):
                policy.learn_formatted(
                    formatted,
                    decision.context.index(decision.chosen_arm),
                    decision.probability,
                    training_reward(decision, weights),
                )
                progress.advance()
    except BaseException:
        policy.close()
        raise
    finally:
        progress.finish()
    return policy
