"""Prompts the router writes around a request: escalation and component repair.

Both keep the original request verbatim (so a model, or the replay pool, sees the task as
asked) and add what went wrong, so the next model does not repeat it.
"""

from __future__ import annotations

from collections.abc import Sequence

from features.components import Component
from features.query import Message, last_user_text


def _replace_last_user(messages: Sequence[Message], content: str) -> tuple[Message, ...]:
    out = list(messages)
    for index in range(len(out) - 1, -1, -1):
        if out[index].get("role") == "user":
            out[index] = {"role": "user", "content": content}
            return tuple(out)
    return (*out, {"role": "user", "content": content})


def escalation_messages(
    messages: Sequence[Message], failed_output: str, reasons: Sequence[str]
) -> tuple[Message, ...]:
    """The request again, with the rejected answer and the reasons it was rejected."""
    request = last_user_text(messages)
    why = "\n".join(f"- {reason}" for reason in reasons) or "- it was judged wrong"
    content = (
        f"{request}\n\n"
        "---\n"
        "A previous answer to this request was rejected for these reasons:\n"
        f"{why}\n"
        "The rejected answer, for reference only:\n"
        f"<rejected_answer>\n{failed_output}\n</rejected_answer>\n"
        "Answer the request above again, correctly, without repeating those mistakes."
    )
    return _replace_last_user(messages, content)


def component_messages(
    messages: Sequence[Message],
    accepted: Sequence[Component],
    failed: Component,
    reason: str,
) -> tuple[Message, ...]:
    """Ask for a replacement of one failed component, with the accepted parts as context."""
    request = last_user_text(messages)
    context = "\n\n".join(c.text.strip() for c in accepted) or "(none)"
    what = "code block" if failed.kind == "code" else "explanation"
    content = (
        f"{request}\n\n"
        "---\n"
        "Parts of an answer to this request that were accepted:\n"
        f"<accepted>\n{context}\n</accepted>\n"
        f"This {what} of the answer failed ({reason}):\n"
        f"<failed>\n{failed.text.strip()}\n</failed>\n"
        f"Write a correct replacement for that {what} only."
    )
    return _replace_last_user(messages, content)
