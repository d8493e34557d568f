"""Vowpal Wabbit ADF text for contexts: pure string formatting, no workspace.

Numbers become ``name:value`` features, strings become indicator features ``name=value``.
Namespaces are named by their first letter in VW, so callers use distinct initials
(``Q`` query, ``H`` history, ``A`` arm, ``S`` system, ``K`` neighbours' outcomes per arm).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from learner.context import Context, Namespace

_UNSAFE = re.compile(r"[\s|:]+")


@lru_cache(maxsize=1 << 16)
def _token(text: str) -> str:
    """``text`` made safe for a VW line (cached: feature names repeat on every line)."""
    return _UNSAFE.sub("_", text) or "_"


def namespace_text(name: str, values: Namespace) -> str:
    """`` |name f1:0.5 lang=en ...`` (zero and non-finite numbers are dropped)."""
    parts = [f"|{_token(name)}"]
    for key, value in values.items():
        if isinstance(value, str):
            parts.append(f"{_token(key)}={_token(value)}")
        elif math.isfinite(value) and value != 0.0:
            parts.append(f"{_token(key)}:{value:.6g}")
    return " ".join(parts)


NamespaceMemo = dict[tuple[str, tuple[tuple[str, float | str], ...]], str]
"""Namespace texts already formatted, by namespace name and content (see ``adf_lines``)."""


def _text(name: str, values: Namespace, memo: NamespaceMemo | None) -> str:
    if memo is None:
        return namespace_text(name, values)
    key = (name, tuple(values.items()))
    text = memo.get(key)
    if text is None:
        text = memo[key] = namespace_text(name, values)
    return text


def adf_lines(
    context: Context,
    label: tuple[int, float, float] | None = None,
    *,
    memo: NamespaceMemo | None = None,
) -> list[str]:
    """The multi-line ADF example: a ``shared`` line, then one line per arm.

    ``label`` is ``(action index, cost, probability)``; it goes on the chosen arm's line.
    ``memo`` (optional) remembers namespace texts across calls, for batch formatting where
    the same namespaces recur (an arm's identity on every logged decision).
    """
    shared = " ".join(_text(ns, values, memo) for ns, values in context.shared.items())
    lines = [f"shared {shared}".rstrip()]
    for index, arm in enumerate(context.arms):
        features = " ".join(_text(ns, values, memo) for ns, values in arm.namespaces.items())
        prefix = ""
        if label is not None and label[0] == index:
            prefix = f"0:{label[1]:.6g}:{label[2]:.6g} "
        lines.append(f"{prefix}{features}")
    return lines


def with_label(lines: Sequence[str], label: tuple[int, float, float]) -> list[str]:
    """``lines`` from ``adf_lines(context)`` with ``label`` added, exactly as
    ``adf_lines(context, label)`` writes it (lets a context be formatted once, learned
    and predicted many times)."""
    index, cost, probability = label
    labelled = list(lines)
    labelled[index + 1] = f"0:{cost:.6g}:{probability:.6g} {labelled[index + 1]}"
    return labelled
