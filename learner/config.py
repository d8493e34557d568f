"""Validated, immutable policy configuration and the VW arguments it stands for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Exploration = Literal["epsilon", "squarecb", "softmax"]
CbType = Literal["mtr", "ips", "dr", "dm"]


@dataclass(frozen=True)
class PolicyConfig:
    """How a stage's policy explores and learns.

    ``epsilon``: greedy arm gets 1 - epsilon, the rest share epsilon uniformly.
    ``squarecb``: probabilities fall with each arm's estimated gap to the best
    (``gamma_scale`` sets how fast). ``softmax``: probabilities proportional to
    exp(``softmax_lambda`` * score).

    ``cb_type`` is how VW turns a logged (arm, probability, reward) into a training signal:
    ``mtr`` (VW's default for ADF), ``ips``, ``dr`` or ``dm``; counterfactual training from
    logs chooses ``ips`` or ``dr`` explicitly.
    """

    exploration: Exploration = "epsilon"
    epsilon: float = 0.1
    gamma_scale: float = 10.0
    softmax_lambda: float = 10.0
    learning_rate: float = 0.5
    interactions: tuple[str, ...] = ("QA", "HA")
    seed: int = 0
    cb_type: CbType = "mtr"

    def __post_init__(self) -> None:
        if self.exploration not in ("epsilon", "squarecb", "softmax"):
            raise ValueError(f"unknown exploration {self.exploration!r}")
        if self.cb_type not in ("mtr", "ips", "dr", "dm"):
            raise ValueError(f"unknown cb_type {self.cb_type!r}: use mtr, ips, dr or dm")
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError("epsilon must be in (0, 1]: every eligible arm keeps some probability")
        if self.gamma_scale <= 0 or self.softmax_lambda <= 0 or self.learning_rate <= 0:
            raise ValueError("gamma_scale, softmax_lambda and learning_rate must be positive")
        for pair in self.interactions:
            if len(pair) != 2 or not pair.isalpha():
                raise ValueError(f"interaction {pair!r} must be two namespace letters")

    def vw_args(self) -> str:
        """The VW command line for a ``--cb_explore_adf`` workspace with this config."""
        args = ["--cb_explore_adf", "--quiet", f"--random_seed {self.seed}"]
        if self.cb_type != "mtr":
            args.append(f"--cb_type {self.cb_type}")
        args.append(f"-l {self.learning_rate:g}")
        if self.exploration == "epsilon":
            args.append(f"--epsilon {self.epsilon:g}")
        elif self.exploration == "squarecb":
            args.append(f"--squarecb --gamma_scale {self.gamma_scale:g}")
            args.append(f"--epsilon {self.epsilon:g}")
        else:
            args.append(f"--softmax --lambda {self.softmax_lambda:g}")
            args.append(f"--epsilon {self.epsilon:g}")
        args += [f"-q {pair}" for pair in self.interactions]
        return " ".join(args)
