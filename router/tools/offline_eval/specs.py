"""Candidate policies as the command line names them.

=====================================  =====================================================
``logging``                            the logging policy (the logged PMFs)
``deployed``                           the deployed policy: its newest snapshot in the store
``uniform``                            uniform over the eligible arms
``always:ARM``                         always ARM (uniform when ARM was not eligible)
``prefer:ARM1,ARM2,...``               the first eligible of the listed arms
``rule:CATEGORY=ARM,...,*=ARM``        the task-level rule: an arm per top query category
                                       (``*``: every other category)
``vw:KEY=VALUE,...``                   a VW policy with other arguments or reward weights,
                                       learning online from the log (progressive)
``model:PATH``                         a VW model file (e.g. from ``--save-model``), frozen
``supported:SPEC``                     SPEC restricted to the arms the log explored
=====================================  =====================================================

``vw:`` keys: the ``PolicyConfig`` fields (``exploration``, ``epsilon``, ``gamma_scale``,
``softmax_lambda``, ``learning_rate``, ``interactions`` as ``QA+HA``, ``seed``,
``cb_type``) and the reward weights (``lambda_cost``, ``lambda_latency``, ``cost_ref_usd``,
``latency_ref_ms``: the candidate learns from rewards re-shaped with them, which needs logs
that kept each decision's outcome). ``--train`` takes the same keys plus ``passes``.
Unset keys default to the deployed service's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from features.errors import ConfigError
from learner.config import PolicyConfig
from learner.reward import RewardWeights

_POLICY_KEYS = {f.name for f in fields(PolicyConfig)}
_WEIGHT_KEYS = {f.name for f in fields(RewardWeights)}
_TEXT_KEYS = {"exploration", "cb_type"}
_INT_KEYS = {"seed", "passes"}


@dataclass(frozen=True)
class LoggingSpec:
    name: str = "logging"


@dataclass(frozen=True)
class DeployedSpec:
    name: str = "deployed"


@dataclass(frozen=True)
class StaticSpec:
    name: str
    preferences: tuple[str, ...]


@dataclass(frozen=True)
class RuleSpec:
    name: str
    rules: Mapping[str, str]
    default: str | None


@dataclass(frozen=True)
class VWSpec:
    """A VW policy config, optional reward weights and (for training) passes."""

    name: str
    config: PolicyConfig
    weights: RewardWeights | None = None
    passes: int = 1


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path


@dataclass(frozen=True)
class SupportedSpec:
    name: str
    inner: CandidateSpec


CandidateSpec = (
    LoggingSpec | DeployedSpec | StaticSpec | RuleSpec | VWSpec | ModelSpec | SupportedSpec
)


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{what}: expected KEY=VALUE, got {part!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def parse_vw_options(text: str, base: PolicyConfig, what: str) -> VWSpec:
    """``KEY=VALUE,...`` over ``base``; ConfigError naming the bad key or value."""
    policy: dict[str, Any] = {}
    weights: dict[str, Any] = {}
    passes = 1
    for key, value in _pairs(text, what):
        try:
            parsed: Any
            if key == "interactions":
                parsed = tuple(filter(None, value.split("+")))
            elif key in _TEXT_KEYS:
                parsed = value
            elif key in _INT_KEYS:
                parsed = int(value)
            else:
                parsed = float(value)
        except ValueError:
            raise ConfigError(f"{what}: {key}={value!r} is not a number") from None
        if key == "passes":
            passes = parsed
        elif key in _POLICY_KEYS:
            policy[key] = parsed
        elif key in _WEIGHT_KEYS:
            weights[key] = parsed
        else:
            known = ", ".join(sorted(_POLICY_KEYS | _WEIGHT_KEYS | {"passes"}))
            raise ConfigError(f"{what}: unknown key {key!r} (known: {known})")
    try:
        config = replace(base, **policy)
        reward_weights = RewardWeights(**weights) if weights else None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if passes < 1:
        raise ConfigError(f"{what}: passes must be >= 1")
    return VWSpec(name=what, config=config, weights=reward_weights, passes=passes)


def parse_candidate(text: str, base: PolicyConfig) -> CandidateSpec:
    """One ``--candidate`` value; its name is the text itself."""
    spec = text.strip()
    kind, sep, body = spec.partition(":")
    if not sep:
        if spec == "logging":
            return LoggingSpec()
        if spec == "deployed":
            return DeployedSpec()
        if spec == "uniform":
            return StaticSpec(name="uniform", preferences=())
    elif kind == "always" and body and "," not in body:
        return StaticSpec(name=spec, preferences=(body,))
    elif kind == "prefer" and body:
        return StaticSpec(name=spec, preferences=tuple(a.strip() for a in body.split(",")))
    elif kind == "rule" and body:
        rules = dict(_pairs(body, spec))
        default = rules.pop("*", None)
        return RuleSpec(name=spec, rules=rules, default=default)
    elif kind == "vw":
        return parse_vw_options(body, base, spec)
    elif kind == "model" and body:
        return ModelSpec(name=spec, path=Path(body))
    elif kind == "supported" and body:
        return SupportedSpec(name=spec, inner=parse_candidate(body, base))
    raise ConfigError(
        f"unknown candidate {text!r}: use logging, deployed, uniform, always:ARM, "
        "prefer:ARM,..., rule:CATEGORY=ARM,...,*=ARM, vw:KEY=VALUE,..., model:PATH or "
        "supported:SPEC"
    )
