"""How good an answer is: validators first, then (when the route says so) the judge.

The quality in [0, 1] is the judge's score when it was asked, else 1 when every applicable
validator passed and 0 when one failed; a truncated answer is worth at most 0.5. Given the
answer's components (``StageOptions.judge_components``), the judge grades each of them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from features.components import Component
from features.errors import ProviderError
from features.query import Message
from features.tool_calls import CHECK_NAMES, ToolCall, check_tool_calls
from features.validators import Expectations, run_validators
from features.verdicts import ValidationSummary
from router.lifecycle.judge import (
    PASSING_SCORE,
    ComponentVerdict,
    Judge,
    JudgeVerdict,
    should_judge,
)
from router.lifecycle.stages import StageOptions
from router.providers import FunctionCall

log = logging.getLogger("signalroute.assessment")


def judge_reason(verdict: JudgeVerdict) -> str:
    """How a judge's low score is put to the model an answer is escalated to (with the
    components it failed, when it graded them)."""
    failed = "".join(
        f"; {component_label(c)} scored {c.score:g}: {c.reason}"
        for c in verdict.components
        if not c.passed
    )
    return f"judge {verdict.arm} scored it {verdict.score:g}: {verdict.reason}{failed}"


def component_label(verdict: ComponentVerdict) -> str:
    """How a component is named to a model: ``the code block (component 2)``."""
    what = "code block" if verdict.kind == "code" else "explanation"
    return f"the {what} (component {verdict.index + 1})"


@dataclass(frozen=True)
class Assessment:
    validation: ValidationSummary
    verdict: JudgeVerdict | None
    quality: float
    judge_error: str | None = None

    @property
    def judge_score(self) -> float | None:
        return self.verdict.score if self.verdict is not None else None

    @property
    def judge_cost_usd(self) -> float:
        return self.verdict.cost_usd if self.verdict is not None else 0.0

    def reasons(self) -> list[str]:
        """Why the answer is doubtful: failed validators, a low judge score."""
        reasons = self.validation.reasons()
        if self.verdict is not None and self.verdict.score < PASSING_SCORE:
            reasons.append(judge_reason(self.verdict))
        return reasons

    def as_json(self) -> dict[str, Any]:
        return {
            "quality": self.quality,
            "validators": [
                {"name": r.name, "passed": r.passed, "reason": r.reason}
                for r in self.validation.applied
            ],
            "judge": None
            if self.verdict is None
            else {
                "arm": self.verdict.arm,
                "score": self.verdict.score,
                "reason": self.verdict.reason,
                "cost_usd": self.verdict.cost_usd,
                **(
                    {"components": [c.as_json() for c in self.verdict.components]}
                    if self.verdict.components
                    else {}
                ),
            },
            "judge_error": self.judge_error,
        }


def quality_of(
    validation: ValidationSummary, verdict: JudgeVerdict | None, truncated: bool
) -> float:
    quality = verdict.score if verdict is not None else (0.0 if validation.failed else 1.0)
    return min(quality, 0.5) if truncated else quality


def failed_tool_calls(validation: ValidationSummary) -> bool:
    """Whether a tool-call check failed: calls the client cannot run are worth no more than
    no answer (the run is rewarded as a failed one)."""
    return any(r.name in CHECK_NAMES for r in validation.failed)


def answer_validation(
    text: str, expect: Expectations, calls: Sequence[FunctionCall] = ()
) -> ValidationSummary:
    """The validators on an answer. Its tool ``calls`` (OpenAI ``tool_calls``) are checked
    against the offered tools and ``tool_choice`` (``features.tool_calls``), and its text,
    when it has any, by the other validators; an answer without such calls has the calls
    written in its text checked when tools were offered (``run_validators``)."""
    if not calls:
        return run_validators(text, expect)
    made = [ToolCall(call.name, call.arguments) for call in calls]
    checks = check_tool_calls(expect.tools or (), made, expect.tool_choice).summary()
    prose = replace(expect, tools=None, tool_choice=None)
    on_text = run_validators(text, prose).results if text.strip() else ()
    return ValidationSummary((*on_text, *checks.results))


async def assess(
    text: str,
    finish_reason: str | None,
    messages: Sequence[Message],
    expect: Expectations,
    stages: StageOptions,
    judge: Judge | None,
    rng: np.random.Generator,
    *,
    calls: Sequence[FunctionCall] = (),
    components: Sequence[Component] = (),
    gate: Callable[[ValidationSummary], bool] | None = None,
) -> Assessment:
    """Validate ``text`` (and the tool ``calls``) and, when the judge mode asks for it,
    judge it: per component when ``components`` (the parts ``text`` is made of) are two or
    more, else as a whole. A ``gate`` (the learned judge gate) decides in the judge mode's
    place, given the validators' verdicts, whether an answer they did not fail is judged."""
    validation = answer_validation(text, expect, calls)
    verdict: JudgeVerdict | None = None
    error: str | None = None
    if (
        judge is not None
        and not validation.failed
        and (
            gate(validation)
            if gate is not None
            else should_judge(
                stages.judge, stages.judge_sample_rate, validation, rng, stages.judge_rule
            )
        )
    ):
        try:
            verdict = await (
                judge.score_components(messages, components)
                if len(components) >= 2
                else judge.score(messages, text)
            )
        except ProviderError as exc:
            error = exc.message
            log.warning("judge unavailable: %s", exc.message)
    return Assessment(
        validation=validation,
        verdict=verdict,
        quality=quality_of(validation, verdict, finish_reason == "length"),
        judge_error=error,
    )
