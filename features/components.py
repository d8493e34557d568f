"""Components of an answer: fenced code blocks and the prose around them.

A response is split into ordered components so each can be validated on its own and, when
one fails, replaced by another model's version while the accepted parts stay.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from features.anomalies import RefusalDetector
from features.validators import is_python_block, python_syntax_error

ComponentKind = Literal["code", "prose"]

_BLOCK = re.compile(r"```([a-zA-Z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Component:
    """One part of an answer, its text as it appears (fences included for code)."""

    kind: ComponentKind
    text: str
    language: str = ""
    arm: str | None = None

    @property
    def body(self) -> str:
        """The code inside the fences (the text itself for prose)."""
        match = _BLOCK.fullmatch(self.text.strip())
        return match.group(2) if match and self.kind == "code" else self.text


def split_components(text: str) -> list[Component]:
    """Code blocks and non-blank prose between them, in order."""
    parts: list[Component] = []
    position = 0
    for match in _BLOCK.finditer(text):
        prose = text[position : match.start()]
        if prose.strip():
            parts.append(Component("prose", prose))
        parts.append(Component("code", match.group(0), language=match.group(1).lower()))
        position = match.end()
    tail = text[position:]
    if tail.strip():
        parts.append(Component("prose", tail))
    return parts


def check_component(component: Component) -> str | None:
    """Why a component fails on its own (None when it passes).

    Python code (``is_python_block``) must parse; prose must not be a refusal.
    """
    if component.kind == "code":
        if not is_python_block(component.language, component.body):
            return None
        error = python_syntax_error(component.body)
        return None if error is None else f"code does not parse: {error}"
    detector = RefusalDetector(window_chars=len(component.text) + 1)
    reason = detector.feed(component.text, component.text)
    return reason


def first_of_kind(text: str, kind: ComponentKind) -> Component | None:
    """The first component of ``kind`` in another answer (a replacement candidate)."""
    return next((c for c in split_components(text) if c.kind == kind), None)


def assemble(components: Sequence[Component]) -> str:
    """The answer text from its components, code blocks on their own lines."""
    pieces: list[str] = []
    for component in components:
        text = component.text.strip("\n") if component.kind == "code" else component.text.strip()
        pieces.append(text)
    return "\n\n".join(piece for piece in pieces if piece)


def attribute(components: Sequence[Component], arm: str) -> list[Component]:
    """The components marked as produced by ``arm`` (where not already attributed)."""
    return [c if c.arm is not None else replace(c, arm=arm) for c in components]
