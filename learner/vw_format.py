"""Vowpal Wabbit ADF text for contexts: pure string formatting, no workspace.

Numbers become ``name:value`` features, strings become indicator features ``name=value``.
Namespaces are named by their first letter in VW, so callers use distinct initials
(``Q`` query, ``H`` history, ``A`` arm, ``S`` system, ``K`` neighbours' outcomes per arm).
"""

from __future__ import annotations

import math
import re

from learner.context import Context, Namespace

_UNSAFE = re.compile(r"[\s|:]+")


def _token(text: str) -> str:
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


def adf_lines(context: Context, label: tuple[int, float, float] | None = None) -> list[str]:
    """The multi-line ADF example: a ``shared`` line, then one line per arm.

    ``label`` is ``(action index, cost, probability)``; it goes on the chosen arm's line.
    """
    shared = " ".join(namespace_text(ns, values) for ns, values in context.shared.items())
    lines = [f"shared {shared}".rstrip()]
    for index, arm in enumerate(context.arms):
        features = " ".join(namespace_text(ns, values) for ns, values in arm.namespaces.items())
        prefix = ""
        if label is not None and label[0] == index:
            prefix = f"0:{label[1]:.6g}:{label[2]:.6g} "
        lines.append(f"{prefix}{features}")
    return lines
