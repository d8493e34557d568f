"""Query signals: what the request itself says about the work it needs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from features.categories import CategoryIndex
from features.embedding import Embedder, Vector
from features.language import detect_language
from features.words import words_in

Message = Mapping[str, Any]

_CODE_FENCE = re.compile(r"```")
# The hints are whole words of the lower-cased prompt (``\w+`` runs, as ``\bword\b`` would
# match them): one split of the prompt and set look-ups replace three regular expressions
# scanning it. The two hints of several words go through a pattern, only when the text holds
# their first word.
CODE_HINT_WORDS = frozenset(
    "def class function return import python javascript java sql regex code compile bug".split()
)
REASONING_HINT_WORDS = frozenset(
    "why prove explain derive compare analyse analyze optimise optimize design "
    "tradeoff tradeoffs calculate compute".split()
)
_REASONING_PHRASES = re.compile(r"\b(step by step|trade-offs?)\b")
_PHRASE_STARTS = ("step", "trade")


def reasoning_hits(lowered: str, words: Mapping[str, int]) -> int:
    """How many reasoning verbs (and ``step by step``, ``trade-off``) ``lowered`` holds;
    ``words`` counts its ``\\w+`` runs."""
    hits = sum(words[word] for word in REASONING_HINT_WORDS.intersection(words))
    if any(start in words for start in _PHRASE_STARTS):
        hits += len(_REASONING_PHRASES.findall(lowered))
    return hits


MAX_HINTS = 8
_HINT_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_HINT_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+/-]{0,63}")


def check_hints(hints: Mapping[str, object]) -> dict[str, str]:
    """``hints`` as they become features, or ValueError saying what is wrong.

    At most ``MAX_HINTS`` pairs; a key is a lower-case identifier of at most 32 characters;
    a value is a string of 1 to 64 letters, digits and ``. _ + / -``, starting with a letter
    or digit (compared exactly: ``SQL`` and ``sql`` are two values). No spaces, ``:`` or
    ``|``: Vowpal Wabbit's text format would merge values that differ only there.
    """
    if len(hints) > MAX_HINTS:
        raise ValueError(f"at most {MAX_HINTS} hints, got {len(hints)}")
    checked: dict[str, str] = {}
    for key, value in hints.items():
        if not isinstance(key, str) or not _HINT_KEY.fullmatch(key):
            raise ValueError(
                f"hint key {key!r} must be a lower-case identifier ([a-z][a-z0-9_]*, "
                "at most 32 characters)"
            )
        if not isinstance(value, str) or not _HINT_VALUE.fullmatch(value):
            raise ValueError(
                f"hint {key!r} must be a string of 1 to 64 letters, digits and . _ + / - "
                f"starting with a letter or digit, got {value!r}"
            )
        checked[key] = value
    return checked


@dataclass(frozen=True)
class QuerySignals:
    """Feature values of a request, before any model has answered."""

    chars: int
    tokens_est: int
    language: str
    code_blocks: int
    code_hint: bool
    image_parts: int
    depth: int
    has_system: bool
    json_requested: bool
    schema_given: bool
    questions: int
    complexity: float
    categories: Mapping[str, float]
    hints: Mapping[str, str] = field(default_factory=dict)
    """What the caller says about the request (``{"task": "sql"}``): each pair becomes an
    indicator feature ``hint_<key>=<value>``, learned per arm like every query feature."""

    def as_features(self) -> dict[str, float | str]:
        """Flat name -> value map (numbers stay numbers, categories become strings)."""
        values: dict[str, float | str] = {
            "log_tokens": round(math.log1p(self.tokens_est), 4),
            "language": self.language,
            "code_blocks": float(min(self.code_blocks, 10)),
            "code_hint": float(self.code_hint),
            "image_parts": float(self.image_parts),
            "depth": float(min(self.depth, 20)),
            "has_system": float(self.has_system),
            "json_requested": float(self.json_requested),
            "schema_given": float(self.schema_given),
            "questions": float(min(self.questions, 10)),
            "complexity": self.complexity,
        }
        for name, score in self.categories.items():
            values[f"cat_{name}"] = score
        for key in sorted(self.hints):
            values[f"hint_{key}"] = self.hints[key]
        return values


def message_text(message: Message) -> str:
    """The text of a message: its string content, or its text parts joined by newlines."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def image_count(message: Message) -> int:
    content = message.get("content")
    if isinstance(content, Sequence) and not isinstance(content, str):
        return sum(
            1
            for part in content
            if isinstance(part, Mapping) and part.get("type") in ("image_url", "input_image")
        )
    return 0


def last_user_text(messages: Sequence[Message]) -> str:
    """The text of the last user message ('' when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def estimate_complexity(
    tokens_est: int, code_blocks: int, questions: int, reasoning_hits: int, depth: int
) -> float:
    """A heuristic difficulty in [0, 1]: longer, more code, more reasoning verbs, deeper."""
    score = (
        0.35 * min(1.0, math.log1p(tokens_est) / math.log1p(4000))
        + 0.2 * min(1.0, code_blocks / 3)
        + 0.15 * min(1.0, questions / 4)
        + 0.2 * min(1.0, reasoning_hits / 3)
        + 0.1 * min(1.0, (depth - 1) / 5)
    )
    return round(max(0.0, min(1.0, score)), 4)


def query_signals(
    messages: Sequence[Message],
    response_format: Mapping[str, Any] | None,
    embedding: Vector,
    categories: CategoryIndex,
    hints: Mapping[str, str] | None = None,
) -> QuerySignals:
    """Extract the query signals; ``embedding`` is the embedder's vector of the last user turn,
    ``hints`` the caller's descriptors of the request, as ``check_hints`` accepts them
    (``RouteRequest`` checks them when it is made)."""
    prompt = last_user_text(messages)
    lowered = prompt.lower()
    prompt_words = words_in(prompt)  # split once: the embedding read the same prompt
    words = prompt_words.counts
    all_text = "\n".join(message_text(m) for m in messages)
    chars = len(all_text)
    tokens_est = math.ceil(chars / 4)
    code_blocks = len(_CODE_FENCE.findall(prompt)) // 2
    depth = sum(1 for m in messages if m.get("role") == "user")
    format_type = (response_format or {}).get("type")
    json_requested = format_type in ("json_object", "json_schema") or "json" in words
    questions = prompt.count("?")
    return QuerySignals(
        chars=chars,
        tokens_est=tokens_est,
        language=detect_language(prompt, words=prompt_words),
        code_blocks=code_blocks,
        code_hint=code_blocks > 0 or not CODE_HINT_WORDS.isdisjoint(words),
        image_parts=sum(image_count(m) for m in messages),
        depth=depth,
        has_system=any(m.get("role") == "system" for m in messages),
        json_requested=json_requested,
        schema_given=format_type == "json_schema",
        questions=questions,
        complexity=estimate_complexity(
            tokens_est, code_blocks, questions, reasoning_hits(lowered, words), depth
        ),
        categories=categories.similarities(embedding),
        hints=dict(hints or {}),
    )


def embed_query(embedder: Embedder, messages: Sequence[Message]) -> Vector:
    """The vector the router stores and searches with: the last user turn's embedding."""
    return embedder.embed(last_user_text(messages))
