"""The replayed LLM-as-judge (model id ``replay/judge``).

Recorded data has no judge outputs, so a verdict is the recorded correctness label of the
judged answer, flipped with probability ``1 - accuracy``, and it costs what the judge's stand-in
model (``gpt-3.5-turbo-1106``) was billed on that prompt (see docs/benchmarks/index.md).

Contract of a judge request: its last user message holds the recorded prompt (matched as any
prompt is: exact, contains, nearest) and the candidate answer, preferably inside
``<answer>...</answer>`` (the last such block counts); without one, the candidate is the text
after the recorded prompt. The candidate is identified with one of the prompt's recorded
answers (equal, else the longest one it contains, else the most similar one by character
trigrams, if at least ``MIN_ANSWER_SIMILARITY``), whose label is the truth. An empty or
unidentifiable candidate is judged wrong.

The flip is a deterministic function of (seed, prompt id, candidate text): the same answer to
the same prompt always gets the same verdict, whatever the order requests arrive in.

A per-component request (the router's ``judge_components``) holds the answer's components
in ``<component index="i" kind="code|prose">...</component>`` blocks instead. The components
that carry the answer (its code blocks when it has any, else its prose) each take the label
of the recorded answer they come from (the one containing them, else the nearest); the
others are right. Each component's verdict is flipped on its own, as a whole answer's is
(keyed by its text), and the answer is right when every component is.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from features.errors import ConfigError, RequestError
from router.tools.replay_pool.dataset import ModelOutcome, ReplayRecord
from router.tools.replay_pool.matching import Match, PromptMatcher
from router.tools.replay_pool.ngrams import IdArray, text_ngram_ids

JUDGE_MODEL = "replay/judge"
JUDGE_BILLED_AS = "gpt-3.5-turbo-1106"
DEFAULT_JUDGE_ACCURACY = 0.9

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_COMPONENT_BLOCK = re.compile(
    r'<component index="(\d+)" kind="(code|prose)">(.*?)</component>', re.DOTALL
)
_TRIGRAM_BITS = 32
MIN_ANSWER_SIMILARITY = 0.3

AnswerMatch = Literal["exact", "contains", "part", "nearest", "none"]
PartKind = Literal["code", "prose"]


@dataclass(frozen=True, slots=True)
class Part:
    """One component of a judged answer, as the judge prompt numbers it (from 1)."""

    number: int
    kind: PartKind
    text: str


@dataclass(frozen=True, slots=True)
class PartVerdict:
    """A verdict on one component: ``carries`` the answer (else it is right whatever the
    label), the recorded answer it was identified with (None when it was not, or need not
    be), and the verdict given."""

    part: Part
    carries: bool
    answer_model: str | None
    answer_match: AnswerMatch
    correct: bool

    def as_json(self) -> dict[str, Any]:
        if not self.carries:
            why = "does not carry the answer"
        elif self.answer_model is None:
            why = "resembles no recorded answer to this prompt"
        else:
            why = f"comes ({self.answer_match}) from the recorded answer of {self.answer_model}"
        return {
            "index": self.part.number,
            "kind": self.part.kind,
            "score": 1.0 if self.correct else 0.0,
            "reason": f"replayed: the {self.part.kind} {why}",
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's answer. ``answer_model`` is the model whose recorded answer the candidate
    was identified with (None when it could not be); ``correct`` is the verdict given."""

    match: Match
    answer_model: str | None
    answer_match: AnswerMatch
    correct: bool
    cost_usd: float
    parts: tuple[PartVerdict, ...] = ()
    """One verdict per component of a per-component request (empty for a whole answer)."""

    def content(self) -> str:
        """The judge's reply: one JSON object."""
        body: dict[str, Any] = {
            "verdict": "correct" if self.correct else "incorrect",
            "score": 1.0 if self.correct else 0.0,
            "prompt_id": self.match.record.prompt_id,
            "reason": self._reason(),
        }
        if self.parts:
            body["components"] = [part.as_json() for part in self.parts]
        return json.dumps(body)

    def _reason(self) -> str:
        if self.parts:
            wrong = [str(p.part.number) for p in self.parts if not p.correct]
            if not wrong:
                return "replayed: every component is right"
            return f"replayed: component {', '.join(wrong)} is wrong"
        if self.answer_model is None:
            return "no recorded answer to this prompt resembles the candidate"
        return (
            f"replayed: the candidate matches ({self.answer_match}) the recorded answer of "
            f"{self.answer_model} to prompt {self.match.record.prompt_id}"
        )


def split_judge_prompt(text: str) -> tuple[str, str | None]:
    """The text without its ``<answer>`` blocks, and the last block's content (or None)."""
    blocks = _ANSWER_BLOCK.findall(text)
    if not blocks:
        return text, None
    return _ANSWER_BLOCK.sub("\n", text), str(blocks[-1])


def split_component_prompt(text: str) -> tuple[str, tuple[Part, ...]]:
    """The text without its ``<component>`` blocks, and the blocks (none when it has none).

    Raises RequestError when the blocks are not numbered 1, 2, ... in order."""
    parts = tuple(
        Part(int(number), "code" if kind == "code" else "prose", body.strip())
        for number, kind, body in _COMPONENT_BLOCK.findall(text)
    )
    if [p.number for p in parts] != list(range(1, len(parts) + 1)):
        raise RequestError("the judge's components are not numbered 1, 2, ... in order")
    return _COMPONENT_BLOCK.sub("\n", text), parts


def carrying(parts: Sequence[Part]) -> frozenset[int]:
    """The numbers of the components that carry the answer: its code blocks when it has
    any, else its prose."""
    kind = "code" if any(p.kind == "code" for p in parts) else "prose"
    return frozenset(p.number for p in parts if p.kind == kind)


def identify_part(text: str, record: ReplayRecord) -> tuple[ModelOutcome | None, AnswerMatch]:
    """The recorded outcome a component comes from: the first (in dataset order) whose
    answer contains it, else as ``identify`` finds a whole answer."""
    wanted = text.strip()
    if not wanted:
        return None, "none"
    for outcome in record.outcomes:
        if wanted in outcome.response:
            return outcome, "part"
    return identify(wanted, record)


def part_truths(
    parts: Sequence[Part], record: ReplayRecord
) -> list[tuple[bool, ModelOutcome | None, AnswerMatch, bool]]:
    """For each component: whether it carries the answer, the outcome it was identified
    with, how, and its true verdict (a component that does not carry the answer is right)."""
    carriers = carrying(parts)
    truths: list[tuple[bool, ModelOutcome | None, AnswerMatch, bool]] = []
    for part in parts:
        if part.number not in carriers:
            truths.append((False, None, "none", True))
            continue
        outcome, how = identify_part(part.text, record)
        truths.append((True, outcome, how, outcome is not None and outcome.correct >= 0.5))
    return truths


def _trigrams(text: str) -> IdArray:
    return np.unique(text_ngram_ids(text, (3,), _TRIGRAM_BITS))


def identify(candidate: str, record: ReplayRecord) -> tuple[ModelOutcome | None, AnswerMatch]:
    """The recorded outcome whose answer the candidate is (first model in dataset order on
    ties), and how it was found."""
    wanted = candidate.strip()
    if not wanted:
        return None, "none"
    for outcome in record.outcomes:
        if outcome.response.strip() == wanted:
            return outcome, "exact"
    contained = [o for o in record.outcomes if o.response.strip() and o.response.strip() in wanted]
    if contained:
        return max(contained, key=lambda o: len(o.response.strip())), "contains"
    mine = _trigrams(wanted)
    best: ModelOutcome | None = None
    best_score = -1.0
    for outcome in record.outcomes:
        theirs = _trigrams(outcome.response)
        shared = len(np.intersect1d(mine, theirs, assume_unique=True))
        score = shared / math.sqrt(len(mine) * len(theirs)) if shared else 0.0
        if score > best_score:
            best, best_score = outcome, score
    if best is None or best_score < MIN_ANSWER_SIMILARITY:
        return None, "none"
    return best, "nearest"


class ReplayJudge:
    """Judges candidate answers against the recorded labels, with seeded noise."""

    def __init__(
        self,
        matcher: PromptMatcher,
        *,
        models: tuple[str, ...],
        accuracy: float = DEFAULT_JUDGE_ACCURACY,
        seed: int = 0,
        billed_as: str = JUDGE_BILLED_AS,
    ) -> None:
        if not 0.0 <= accuracy <= 1.0:
            raise ConfigError(f"judge accuracy must lie in [0, 1], got {accuracy}")
        if billed_as not in models:
            raise ConfigError(f"judge is billed as {billed_as}, which the replay data lacks")
        self._matcher = matcher
        self._accuracy = accuracy
        self._seed = seed
        self._billed_as = billed_as

    @property
    def accuracy(self) -> float:
        return self._accuracy

    def _keeps_label(self, prompt_id: str, candidate: str) -> bool:
        key = [self._seed, zlib.crc32(prompt_id.encode()), zlib.crc32(candidate.encode())]
        return bool(np.random.default_rng(key).random() < self._accuracy)

    def judge(self, text: str) -> Verdict:
        """The verdict on the candidate answer in a judge prompt (see the module contract).

        Raises RequestError for a per-component prompt whose components are misnumbered."""
        question, parts = split_component_prompt(text)
        if parts:
            return self._judge_parts(question, parts)
        question, candidate = split_judge_prompt(text)
        match = self._matcher.match(question)
        record = match.record
        if candidate is None:
            prompt = record.prompt.strip()
            at = question.rfind(prompt) if match.kind != "nearest" else -1
            candidate = question[at + len(prompt) :] if at >= 0 else ""
        outcome, how = identify(candidate, record)
        truth = outcome is not None and outcome.correct >= 0.5
        correct = truth if self._keeps_label(record.prompt_id, candidate.strip()) else not truth
        return Verdict(
            match=match,
            answer_model=outcome.model if outcome is not None else None,
            answer_match=how,
            correct=correct,
            cost_usd=record.outcome(self._billed_as).cost_usd,
        )

    def _judge_parts(self, question: str, parts: Sequence[Part]) -> Verdict:
        match = self._matcher.match(question)
        record = match.record
        verdicts = tuple(
            PartVerdict(
                part,
                carries,
                outcome.model if outcome is not None else None,
                how,
                truth if self._keeps_label(record.prompt_id, part.text) else not truth,
            )
            for part, (carries, outcome, how, truth) in zip(
                parts, part_truths(parts, record), strict=True
            )
        )
        carriers = [v for v in verdicts if v.carries]
        return Verdict(
            match=match,
            answer_model=next((v.answer_model for v in carriers if v.answer_model), None),
            answer_match=carriers[0].answer_match if carriers else "none",
            correct=all(v.correct for v in verdicts),
            cost_usd=record.outcome(self._billed_as).cost_usd,
            parts=verdicts,
        )
