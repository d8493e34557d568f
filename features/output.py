"""Output signals: what an answer looks like once a model has given it."""

from __future__ import annotations

import math

from features.validators import code_blocks
from features.verdicts import ValidationSummary


def output_features(
    text: str,
    finish_reason: str | None,
    validation: ValidationSummary,
    judge_score: float | None,
    arm: str,
) -> dict[str, float | str]:
    """Shared features of the escalation decision (namespace ``O``)."""
    values: dict[str, float | str] = {
        "log_chars": round(math.log1p(len(text)), 4),
        "truncated": 1.0 if finish_reason == "length" else 0.0,
        "code_blocks": float(min(len(code_blocks(text)), 10)),
        "validators_failed": float(len(validation.failed)),
        "validated": 1.0 if validation.conclusive else 0.0,
        "answered_by": arm,
    }
    for result in validation.failed:
        values[f"failed_{result.name}"] = 1.0
    if judge_score is not None:
        values["judged"] = 1.0
        values["judge_score"] = round(judge_score, 4)
        values["judge_low"] = 1.0 if judge_score < 0.5 else 0.0
    return values
