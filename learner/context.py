"""Bandit contexts: the shared features of a decision and the features of each arm.

A ``Context`` is plain data (names to numbers or strings), so it is logged with the decision
as JSON and rebuilt exactly when a delayed reward arrives or traffic is replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FeatureValue = float | str
Namespace = Mapping[str, FeatureValue]


@dataclass(frozen=True)
class ArmFeatures:
    """One candidate arm: its name and its feature namespaces (identity, price, system...)."""

    arm: str
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Shared namespaces (query, historical) plus the eligible arms, in action order."""

    shared: Mapping[str, Namespace]
    arms: tuple[ArmFeatures, ...]

    def __post_init__(self) -> None:
        if not self.arms:
            raise ValueError("a context needs at least one arm")
        names = [a.arm for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names in a context must be unique")

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.arm for a in self.arms)

    def index(self, arm: str) -> int:
        """Action index of ``arm``; ValueError when it is not among the candidates."""
        return self.arm_names.index(arm)

    def to_json(self) -> dict[str, Any]:
        return {
            "shared": {ns: dict(values) for ns, values in self.shared.items()},
            "arms": [
                {"arm": a.arm, "namespaces": {ns: dict(v) for ns, v in a.namespaces.items()}}
                for a in self.arms
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Context:
        return cls(
            shared={ns: dict(values) for ns, values in data["shared"].items()},
            arms=tuple(
                ArmFeatures(
                    arm=a["arm"], namespaces={ns: dict(v) for ns, v in a["namespaces"].items()}
                )
                for a in data["arms"]
            ),
        )
