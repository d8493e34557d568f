"""Reading a learned policy: its weights by name, each feature's part in an arm's score, and
contexts changed one signal at a time to see how the PMF moves. Pure: no VW workspace (the
readable model comes from ``learner.vw_readable``), no pandas (rows are plain values).

**How VW scores an arm.** ``--cb_explore_adf`` (``cb_type mtr``) predicts each arm's cost as
a linear function of the arm's line: the shared namespaces (query ``Q``, history ``H``, ...)
plus the arm's own (``A``, ``S``, ``K``), every pair of namespaces named by an interaction
(``-q QA``: each query feature times each arm feature), and a constant. The predicted cost is
clipped to the labels seen (``[-1, 0]``: costs are negated rewards), so an arm's estimated
reward is ``-clip(sum of contributions)``; exploration then turns the estimates into the
PMF. A feature's **contribution** is its value times its weight; its name is VW's:
``Q^log_tokens``, ``A^arm=gpt-4``, ``Q^cat_code*A^arm=gpt-4``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from learner.context import ArmFeatures, Context, FeatureValue, Namespace
from learner.vw_format import namespace_text

CONSTANT = "Constant"
ARM_FEATURE = "arm"
"""The identity feature of an arm (``A^arm=NAME``), as ``router.contexts`` writes it."""


class PMFSource(Protocol):
    """Anything that gives a PMF over a context's arms (a ``VWPolicy``)."""

    def pmf(self, context: Context) -> list[float]: ...


@dataclass(frozen=True)
class Weight:
    """One named weight: ``term`` as VW names it, split into its ``(namespace, feature)``
    factors (one for a plain feature, two for an interaction, none for the constant)."""

    term: str
    weight: float
    factors: tuple[tuple[str, str], ...]

    @property
    def arm(self) -> str | None:
        """The arm whose identity feature is a factor (its name as VW wrote it), if any."""
        for namespace, feature in self.factors:
            if namespace == "A" and feature.startswith(f"{ARM_FEATURE}="):
                return feature[len(ARM_FEATURE) + 1 :]
        return None

    @property
    def namespaces(self) -> str:
        """``Q``, ``QA``, ... (``Constant`` for the constant)."""
        return "".join(ns for ns, _ in self.factors) or CONSTANT

    @property
    def feature(self) -> str:
        """The factors other than the arm's identity, joined by `` x ``: for a per-arm
        weight, what it is the weight of (``(bias)`` for the arm's own identity weight)."""
        arm = self.arm
        others = [
            f"{ns}^{name}"
            for ns, name in self.factors
            if not (arm is not None and ns == "A" and name == f"{ARM_FEATURE}={arm}")
        ]
        if not others:
            return "(bias)" if arm is not None else CONSTANT
        return " x ".join(others)

    def row(self) -> dict[str, str | float | None]:
        """``namespaces, feature, arm, weight, term``: one row of a weights table."""
        return {
            "namespaces": self.namespaces,
            "feature": self.feature,
            "arm": self.arm,
            "weight": self.weight,
            "term": self.term,
        }


@dataclass(frozen=True)
class ReadableModel:
    """A parsed ``--invert_hash`` model: named weights, the label range predictions are
    clipped to, and the interactions (``QA``, ``HA``) the model was trained with."""

    weights: Mapping[str, float]
    min_label: float
    max_label: float
    interactions: tuple[str, ...]
    unnamed: int = 0
    """Non-zero weights without a name (no given context used them)."""

    def rows(self) -> list[Weight]:
        """Every named weight, largest magnitude first."""
        weights = [Weight(t, w, _factors(t)) for t, w in self.weights.items()]
        return sorted(weights, key=lambda w: (-abs(w.weight), w.term))


def _factors(term: str) -> tuple[tuple[str, str], ...]:
    if term == CONSTANT:
        return ()
    factors: list[tuple[str, str]] = []
    for part in term.split("*"):
        namespace, _, feature = part.partition("^")
        factors.append((namespace, feature))
    return tuple(factors)


def _weight_line(line: str) -> tuple[str | None, float] | None:
    """``(name, weight)`` of a weight line (``name:index:weight ...`` or, unnamed,
    ``index:weight ...``); None for a header line."""
    head = line.split(" ", 1)[0]
    parts = head.rsplit(":", 2)
    try:
        if len(parts) == 3 and parts[0]:
            int(parts[1])
            return parts[0], float(parts[2])
        if len(parts) == 2 and parts[0].isdigit() and " " in line.strip():
            return None, float(parts[1])
    except ValueError:
        return None
    return None


def parse_readable_model(text: str) -> ReadableModel:
    """Parse VW's ``--invert_hash`` output (see ``learner.vw_readable``).

    Raises ValueError when the text holds no ``options:`` line (not a readable model).
    """
    weights: dict[str, float] = {}
    min_label, max_label = -math.inf, math.inf
    interactions: list[str] = []
    options_seen = False
    unnamed = 0
    in_weights = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Min label:"):
            min_label = float(line.split(":", 1)[1])
        elif line.startswith("Max label:"):
            max_label = float(line.split(":", 1)[1])
        elif line.startswith("options:"):
            options_seen = True
            interactions = _interactions(line.split(":", 1)[1].split())
        elif line.startswith("l2_state"):
            in_weights = True  # the last header line
        elif in_weights and line:
            parsed = _weight_line(line)
            if parsed is None:
                continue
            name, weight = parsed
            if name is None:
                unnamed += 1
            else:
                weights[name] = weight
    if not options_seen:
        raise ValueError("not a VW readable model: no 'options:' line")
    return ReadableModel(
        weights=weights,
        min_label=min_label,
        max_label=max_label,
        interactions=tuple(interactions),
        unnamed=unnamed,
    )


def _interactions(options: Sequence[str]) -> list[str]:
    found: list[str] = []
    for flag, value in itertools.pairwise(options):
        if flag in ("--quadratic", "-q", "--interactions"):
            found.append(value)
    return found


# --- contributions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    """One active feature of an arm's line: its value, weight and part of the predicted cost
    (``value * weight``; a negative contribution raises the arm's estimated reward)."""

    arm: str
    term: str
    namespaces: str
    value: float
    weight: float

    @property
    def cost(self) -> float:
        return self.value * self.weight

    @property
    def reward(self) -> float:
        """The contribution to the estimated reward (``-cost``)."""
        return -self.cost

    def row(self) -> dict[str, str | float]:
        return {
            "arm": self.arm,
            "term": self.term,
            "namespaces": self.namespaces,
            "value": self.value,
            "weight": self.weight,
            "reward_contribution": self.reward,
        }


def _features(name: str, values: Namespace) -> list[tuple[str, str, float]]:
    """``(namespace, feature name, value)`` as VW reads ``namespace_text(name, values)``."""
    text = namespace_text(name, values)
    head, *tokens = text.split(" ")
    namespace = head[1:]
    out: list[tuple[str, str, float]] = []
    for token in tokens:
        feature, sep, number = token.rpartition(":")
        if sep:
            out.append((namespace, feature, float(number)))
        else:
            out.append((namespace, token, 1.0))
    return out


def arm_features(context: Context, arm: str) -> list[tuple[str, str, float]]:
    """Every ``(namespace, feature, value)`` on ``arm``'s line: shared ones, then its own."""
    chosen = context.arms[context.index(arm)]
    namespaces: list[tuple[str, Namespace]] = [*context.shared.items()]
    namespaces += list(chosen.namespaces.items())
    features: list[tuple[str, str, float]] = []
    for name, values in namespaces:
        features += _features(name, values)
    return features


def contributions(context: Context, model: ReadableModel) -> dict[str, list[Contribution]]:
    """Each arm's contributions (plain features, the model's interactions, the constant),
    in context order; a feature the model has no weight for contributes 0."""
    out: dict[str, list[Contribution]] = {}
    weights = model.weights
    for arm in context.arm_names:
        features = arm_features(context, arm)
        terms: list[tuple[str, str, float]] = [
            (f"{ns}^{name}", ns, value) for ns, name, value in features
        ]
        for pair in model.interactions:
            left = [f for f in features if f[0].startswith(pair[0])]
            right = [f for f in features if f[0].startswith(pair[1])]
            for ns1, name1, value1 in left:
                for ns2, name2, value2 in right:
                    term = f"{ns1}^{name1}*{ns2}^{name2}"
                    terms.append((term, f"{ns1}{ns2}", value1 * value2))
        terms.append((CONSTANT, CONSTANT, 1.0))
        out[arm] = [
            Contribution(arm, term, namespaces, value, weights.get(term, 0.0))
            for term, namespaces, value in terms
        ]
    return out


def estimated_reward(parts: Iterable[Contribution], model: ReadableModel) -> float:
    """An arm's estimated reward: minus its predicted cost, clipped as VW clips it."""
    cost = sum(part.cost for part in parts)
    return -min(model.max_label, max(model.min_label, cost))


@dataclass(frozen=True)
class Explanation:
    """Why a policy gives a context's arms the probabilities it does."""

    arms: tuple[str, ...]
    pmf: Mapping[str, float]
    estimated_reward: Mapping[str, float]
    contributions: Mapping[str, Sequence[Contribution]] = field(repr=False)

    def arm_rows(self) -> list[dict[str, str | float]]:
        """``arm, probability, estimated_reward`` per arm, in context order."""
        return [
            {"arm": a, "probability": self.pmf[a], "estimated_reward": self.estimated_reward[a]}
            for a in self.arms
        ]

    def contribution_rows(self, *, min_abs: float = 0.0) -> list[dict[str, str | float]]:
        """Every contribution whose magnitude exceeds ``min_abs``, arm by arm."""
        return [
            part.row()
            for arm in self.arms
            for part in self.contributions[arm]
            if abs(part.cost) > min_abs
        ]

    def by_namespaces(self) -> list[dict[str, str | float]]:
        """``arm, namespaces, reward_contribution``: contributions summed per namespace
        (``Q``, ``QA``, ``S``, ...), what a stacked bar of an arm's score is made of."""
        rows: list[dict[str, str | float]] = []
        for arm in self.arms:
            sums: dict[str, float] = {}
            for part in self.contributions[arm]:
                sums[part.namespaces] = sums.get(part.namespaces, 0.0) + part.reward
            rows += [
                {"arm": arm, "namespaces": ns, "reward_contribution": value}
                for ns, value in sums.items()
            ]
        return rows


@dataclass(frozen=True)
class FeatureEffect:
    """What one unit of shared feature ``feature`` (``Q^cat_code``) adds to ``arm``'s
    estimated reward, through the interactions with the arm's own features (its identity,
    price, capabilities...)."""

    arm: str
    feature: str
    effect: float

    def row(self) -> dict[str, str | float]:
        return {"arm": self.arm, "feature": self.feature, "effect": self.effect}


def feature_effects(context: Context, model: ReadableModel) -> list[FeatureEffect]:
    """Every shared feature's effect on every arm of ``context`` (the arms' own feature
    values come from the context; the shared feature's value does not matter).

    Only interactions count: a shared feature's own weight adds the same to every arm and
    never changes which arm is preferred. Effects are per arm, in context order, then by
    feature name; features with no interaction weight are left out.
    """
    shared_namespaces = {ns for ns in context.shared}
    out: list[FeatureEffect] = []
    for arm in context.arm_names:
        own = {
            f"{ns}^{name}": value
            for ns_name, values in context.arms[context.index(arm)].namespaces.items()
            for ns, name, value in _features(ns_name, values)
        }
        effects: dict[str, float] = {}
        for term, weight in model.weights.items():
            parts = term.split("*")
            if len(parts) != 2:
                continue
            for shared, other in (parts, parts[::-1]):
                if shared.partition("^")[0] in shared_namespaces and other in own:
                    effects[shared] = effects.get(shared, 0.0) - weight * own[other]
        out += [FeatureEffect(arm, feature, effects[feature]) for feature in sorted(effects)]
    return out


def explain(source: PMFSource, context: Context, model: ReadableModel) -> Explanation:
    """The PMF ``source`` gives ``context``, each arm's estimated reward and its parts.

    ``model`` must be the readable model of the same weights as ``source``, read with this
    context among its contexts (else its features carry no names and count as 0).
    """
    parts = contributions(context, model)
    return Explanation(
        arms=context.arm_names,
        pmf=dict(zip(context.arm_names, source.pmf(context), strict=True)),
        estimated_reward={arm: estimated_reward(parts[arm], model) for arm in parts},
        contributions=parts,
    )


# --- what if: contexts changed one signal at a time ------------------------------------------


def with_shared(context: Context, namespace: str, values: Namespace) -> Context:
    """``context`` with shared ``namespace`` updated by ``values`` (added if missing)."""
    shared = dict(context.shared)
    shared[namespace] = {**shared.get(namespace, {}), **values}
    return Context(shared=shared, arms=context.arms)


def with_arm(context: Context, arm: str, namespace: str, values: Namespace) -> Context:
    """``context`` with ``arm``'s ``namespace`` updated by ``values`` (ValueError for an arm
    the context does not hold)."""
    index = context.index(arm)
    old = context.arms[index]
    namespaces: dict[str, Namespace] = dict(old.namespaces)
    namespaces[namespace] = {**namespaces.get(namespace, {}), **values}
    arms = list(context.arms)
    arms[index] = ArmFeatures(arm=arm, namespaces=namespaces)
    return Context(shared=context.shared, arms=tuple(arms))


def without_arms(context: Context, arms: Iterable[str]) -> Context:
    """``context`` with ``arms`` removed, as the router removes masked arms before the draw
    (ValueError when none would be left)."""
    dropped = set(arms)
    return Context(
        shared=context.shared, arms=tuple(a for a in context.arms if a.arm not in dropped)
    )


@dataclass(frozen=True)
class PMFPoint:
    """One arm's probability at one value of a varied signal (0 when the arm was removed)."""

    x: float
    arm: str
    probability: float

    def row(self) -> dict[str, str | float]:
        return {"x": self.x, "arm": self.arm, "probability": self.probability}


def pmf_sweep(
    source: PMFSource, points: Iterable[tuple[float, Context]], arms: Sequence[str]
) -> list[PMFPoint]:
    """The PMF of each ``(x, context)`` over ``arms`` (arms missing from a context get 0)."""
    out: list[PMFPoint] = []
    for x, context in points:
        pmf = dict(zip(context.arm_names, source.pmf(context), strict=True))
        out += [PMFPoint(x, arm, pmf.get(arm, 0.0)) for arm in arms]
    return out


def feature_ranges(
    contexts: Iterable[Context], namespace: str, *, per_arm: bool
) -> dict[str, tuple[float, float]]:
    """The smallest and largest value of every numeric feature of ``namespace`` over
    ``contexts`` (shared or per-arm): the range a learned weight was fitted on. A feature
    missing from a context counts as 0, as it does in VW."""
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    count = 0
    seen_in: dict[str, int] = {}
    for context in contexts:
        spaces: list[Mapping[str, FeatureValue]] = (
            [a.namespaces.get(namespace, {}) for a in context.arms]
            if per_arm
            else [context.shared.get(namespace, {})]
        )
        for values in spaces:
            count += 1
            for key, value in values.items():
                if isinstance(value, str):
                    continue
                lows[key] = min(lows.get(key, value), value)
                highs[key] = max(highs.get(key, value), value)
                seen_in[key] = seen_in.get(key, 0) + 1
    return {
        key: (
            min(lows[key], 0.0) if seen_in[key] < count else lows[key],
            max(highs[key], 0.0) if seen_in[key] < count else highs[key],
        )
        for key in lows
    }
