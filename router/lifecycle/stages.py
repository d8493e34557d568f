"""Stage names and the per-request options that switch stages on and off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PRE_GENERATION = "pre"
"""Pick the model before generation."""
IN_GENERATION = "in"
"""Pick the model that takes over after a run was cut."""
ESCALATION = "post"
"""After validation and judging: accept the answer or escalate it to another model."""
COMPONENT = "component"
"""Pick the model that rewrites one failed component of an answer."""
JUDGE_GATE = "judge"
"""After validation, before the judge: ask the judge about the answer or accept it unjudged
(with ``judge: learned``; ``router.lifecycle.judge_gate``)."""

STAGES = (PRE_GENERATION, IN_GENERATION, ESCALATION, COMPONENT, JUDGE_GATE)

ACCEPT = "accept"
"""The escalation stage's action that keeps the answer."""
ESCALATE_PREFIX = "escalate:"

JudgeMode = Literal["always", "on_doubt", "sampled", "never", "learned"]
JudgeRule = Literal["always", "on_doubt"]
EscalationContext = Literal["answer", "reasons"]


@dataclass(frozen=True)
class StageOptions:
    """Which stages run for a request, and how.

    ``judge``: ``always``; ``on_doubt`` (when no validator could check the content);
    ``sampled`` (a ``judge_sample_rate`` share of requests); ``never``; ``learned`` (the
    judge gate decides per answer, starting from ``judge_rule``: ``on_doubt`` or ``always``;
    answers the gate does not see, such as escalated ones, are judged by the rule).
    ``holdback_chars``: streamed text held back from the client until this many characters
    passed the detectors (a run cut inside the window is never seen by the client).
    ``max_escalations``: how many times one answer may be escalated in a chain (an escalated
    answer is judged and may be escalated again, each time to an arm not tried yet).
    ``escalation_ladder``: a chain climbs through the cheaper targets before the strongest
    one (``router.lifecycle.escalation.rule_target``); off, every step's rule goes straight
    to the target whose escalations earned the most.
    ``escalation_context``: what an escalated-to arm is sent besides the request: ``answer``
    (the rejected answer and the reasons it was rejected) or ``reasons`` (the reasons alone:
    the rejected answer's tokens are not billed again at the dearer arm's price).
    ``judge_components``: the judge grades an answer of two or more components (code blocks,
    prose) per component; when its verdict fails and some components passed, only the
    failed ones are re-routed (with ``components`` on) instead of escalating the whole
    answer. Off by default: the component policy starts without a rule, so a re-routed part
    may go to any arm, where the escalation rule sends a failed answer to a stronger one.
    """

    in_generation: bool = True
    escalation: bool = True
    components: bool = True
    judge: JudgeMode = "on_doubt"
    judge_sample_rate: float = 0.1
    judge_rule: JudgeRule = "on_doubt"
    holdback_chars: int = 200
    stall_ms: float = 10_000.0
    max_switches: int = 2
    max_escalations: int = 1
    judge_components: bool = False
    escalation_ladder: bool = True
    escalation_context: EscalationContext = "answer"

    def __post_init__(self) -> None:
        if not 0.0 <= self.judge_sample_rate <= 1.0:
            raise ValueError("judge_sample_rate must be in [0, 1]")
        if self.holdback_chars < 0 or self.stall_ms <= 0 or self.max_switches < 0:
            raise ValueError("holdback_chars, max_switches >= 0 and stall_ms > 0")
        if self.max_escalations < 1:
            raise ValueError("max_escalations must be at least 1 (escalation=False turns it off)")


def escalate_action(arm: str) -> str:
    return f"{ESCALATE_PREFIX}{arm}"
