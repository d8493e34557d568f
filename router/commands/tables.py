"""Rows as plain-text tables for a terminal: a header, a rule, aligned columns.

Numbers are right-aligned and floats shown with a fixed number of significant digits;
None is shown as ``-``. Pure: returns the text, prints nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def cell(value: Any) -> str:
    """How one value is shown in a table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def render_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
    max_width: int = 60,
) -> str:
    """``rows`` as a table with ``columns`` (default: the first row's keys), each cell cut to
    ``max_width`` characters; ``(none)`` under the title when there are no rows."""
    heading = f"{title}\n" if title else ""
    if not rows:
        return f"{heading}(none)"
    names = list(columns if columns is not None else rows[0].keys())
    texts = [[_cut(cell(row.get(name)), max_width) for name in names] for row in rows]
    numeric = [
        all(_is_number(row.get(name)) or row.get(name) is None for row in rows) for name in names
    ]
    widths = [max(len(name), *(len(t[i]) for t in texts)) for i, name in enumerate(names)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    body = [line(names), line(["-" * w for w in widths]), *(line(t) for t in texts)]
    return heading + "\n".join(body)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line per row
    return text if len(text) <= width else text[: width - 3] + "..."
