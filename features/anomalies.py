"""Early-stream anomaly detectors: watch an answer as it streams and say when to cut it.

Each detector is a small stateful object fed the text deltas of one run; ``feed`` returns a
reason when the run has gone wrong. They are pure (no I/O, no clock): the stall detector,
which needs time, lives with the stream monitor in the router.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from features.language import detect_language

_REFUSAL = re.compile(
    r"(I'?m sorry|I am sorry|I apologi[sz]e)[,.]? (but )?I (can(?:no|')t|am (not able|unable)|"
    r"won'?t)|\bI can(?:no|')t (help|assist|provide|comply|do that)|"
    r"As an AI( language model)?,? I (cannot|can'?t|am not able|am unable)",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```[a-zA-Z]*\s*")


@dataclass(frozen=True)
class Anomaly:
    """A detector fired: which one, and why."""

    detector: str
    reason: str


class Detector(Protocol):
    name: str

    def feed(self, delta: str, text: str) -> str | None:
        """Take the next delta (``text`` is everything so far); a reason to cut, or None."""
        ...


class RefusalDetector:
    """The model declines the task (looked for in the first ``window_chars`` characters)."""

    name = "refusal"

    def __init__(self, window_chars: int = 400) -> None:
        self._window = window_chars
        self._done = False

    def feed(self, delta: str, text: str) -> str | None:
        if self._done:
            return None
        head = text[: self._window]
        match = _REFUSAL.search(head)
        if match:
            self._done = True
            return f"refusal: {match.group(0)!r}"
        if len(text) >= self._window:
            self._done = True
        return None


class RepetitionDetector:
    """The answer ends in a loop: one phrase of 8-150 characters repeated ``repeats`` times."""

    name = "repetition"

    def __init__(self, repeats: int = 4, min_span_chars: int = 120, every_chars: int = 32) -> None:
        self._repeats = repeats
        self._min_span = min_span_chars
        self._every = every_chars
        self._checked_at = 0

    def feed(self, delta: str, text: str) -> str | None:
        if len(text) - self._checked_at < self._every:
            return None
        self._checked_at = len(text)
        for period in range(8, 151):
            span = period * self._repeats
            if span < self._min_span:
                continue
            if span > len(text):
                break
            tail = text[-span:]
            unit = tail[:period]
            if unit.strip() and tail == unit * self._repeats:
                return f"repetition: {unit.strip()[:40]!r} repeated {self._repeats}+ times"
        return None


class LanguageDetector:
    """The answer's prose drifts away from the query's language."""

    name = "language"

    def __init__(self, expected: str, min_chars: int = 200, every_chars: int = 100) -> None:
        self._expected = expected
        self._min_chars = min_chars
        self._every = every_chars
        self._checked_at = 0

    def feed(self, delta: str, text: str) -> str | None:
        if self._expected == "unknown" or len(text) < self._min_chars:
            return None
        if len(text) - self._checked_at < self._every:
            return None
        self._checked_at = len(text)
        prose = re.sub(r"```.*?(```|$)", " ", text, flags=re.DOTALL)
        found = detect_language(prose[-400:])
        if found not in ("unknown", self._expected):
            return f"language: answer switched to {found}, query is {self._expected}"
        return None


class JsonFormatDetector:
    """JSON was requested, and the output can no longer become valid JSON."""

    name = "format"

    def __init__(self) -> None:
        self._stack: list[str] = []
        self._in_string = False
        self._escaped = False
        self._started = False
        self._closed = False
        self._consumed = 0

    def feed(self, delta: str, text: str) -> str | None:
        if not self._started:
            stripped = text.lstrip()
            if stripped.startswith("`"):
                fence = _FENCE.match(stripped)
                if fence is None or "\n" not in stripped[: fence.end() + 1]:
                    return None if len(stripped) < 12 else "format: a code fence that is not JSON"
                stripped = stripped[fence.end() :]
            if not stripped:
                return None
            if stripped[0] not in "{[":
                return f"format: JSON requested, output starts with {stripped[:30]!r}"
            self._started = True
            self._consumed = len(text) - len(stripped)
        pending = text[self._consumed :]
        self._consumed = len(text)
        for char in pending:
            problem = self._step(char)
            if problem:
                return f"format: {problem}"
        return None

    def _step(self, char: str) -> str | None:
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif char == "\\":
                self._escaped = True
            elif char == '"':
                self._in_string = False
            return None
        if self._closed:
            if char.isspace() or char == "`":
                return None
            return "text after the JSON value ended"
        if char == '"':
            self._in_string = True
        elif char in "{[":
            self._stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if not self._stack or self._stack.pop() != char:
                return f"unbalanced {char!r}"
            if not self._stack:
                self._closed = True
        return None


class CostCapDetector:
    """The run's estimated cost is about to pass the request's cap."""

    name = "cost_cap"

    def __init__(self, max_cost_usd: float, prompt_cost_usd: float, usd_per_char: float) -> None:
        self._max = max_cost_usd
        self._prompt = prompt_cost_usd
        self._per_char = usd_per_char

    def feed(self, delta: str, text: str) -> str | None:
        estimate = self._prompt + len(text) * self._per_char
        if estimate > self._max:
            return f"cost_cap: estimated ${estimate:.6f} passes max_cost_usd ${self._max:g}"
        return None


DetectorFactory = Callable[[], Sequence[Detector]]


def standard_detectors(
    *,
    query_language: str,
    json_requested: bool,
    max_cost_usd: float | None = None,
    prompt_tokens: int = 0,
    input_usd_per_mtok: float = 0.0,
    output_usd_per_mtok: float = 0.0,
) -> list[Detector]:
    """The detectors for one run of one arm."""
    detectors: list[Detector] = [
        RefusalDetector(),
        RepetitionDetector(),
        LanguageDetector(query_language),
    ]
    if json_requested:
        detectors.append(JsonFormatDetector())
    if max_cost_usd is not None and math.isfinite(max_cost_usd):
        detectors.append(
            CostCapDetector(
                max_cost_usd,
                prompt_tokens * input_usd_per_mtok / 1e6,
                output_usd_per_mtok / 4 / 1e6,
            )
        )
    return detectors
