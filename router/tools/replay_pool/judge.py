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
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from features.errors import ConfigError
from router.tools.replay_pool.dataset import ModelOutcome, ReplayRecord
from router.tools.replay_pool.matching import Match, PromptMatcher
from router.tools.replay_pool.ngrams import IdArray, text_ngram_ids

JUDGE_MODEL = "replay/judge"
JUDGE_BILLED_AS = "gpt-3.5-turbo-1106"
DEFAULT_JUDGE_ACCURACY = 0.9

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_TRIGRAM_BITS = 32
MIN_ANSWER_SIMILARITY = 0.3

AnswerMatch = Literal["exact", "contains", "nearest", "none"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's answer. ``answer_model`` is the model whose recorded answer the candidate
    was identified with (None when it could not be); ``correct`` is the verdict given."""

    match: Match
    answer_model: str | None
    answer_match: AnswerMatch
    correct: bool
    cost_usd: float

    def content(self) -> str:
        """The judge's reply: one JSON object."""
        body: dict[str, Any] = {
            "verdict": "correct" if self.correct else "incorrect",
            "score": 1.0 if self.correct else 0.0,
            "prompt_id": self.match.record.prompt_id,
            "reason": self._reason(),
        }
        return json.dumps(body)

    def _reason(self) -> str:
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
        """The verdict on the candidate answer in a judge prompt (see the module contract)."""
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
