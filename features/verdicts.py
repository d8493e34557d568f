"""A check's verdict on an answer, and the verdicts of several checks together.

The validators (``features.validators``) and the tool-call checks (``features.tool_calls``)
both speak in these values, so neither needs the other to describe its results.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValidationResult:
    """One validator's verdict. ``applies`` False means it had nothing to check."""

    name: str
    applies: bool
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class ValidationSummary:
    """The verdicts of a set of validators on one answer."""

    results: tuple[ValidationResult, ...]

    @property
    def applied(self) -> tuple[ValidationResult, ...]:
        return tuple(r for r in self.results if r.applies)

    @property
    def failed(self) -> tuple[ValidationResult, ...]:
        return tuple(r for r in self.results if r.applies and not r.passed)

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def conclusive(self) -> bool:
        """True when some validator checked the content (beyond it being non-empty)."""
        return any(r.name != "length" for r in self.applied) or bool(self.failed)

    def reasons(self) -> list[str]:
        return [f"{r.name}: {r.reason}" for r in self.failed]
