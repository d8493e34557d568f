"""Prompts the router writes around a request: escalation, component repair, and the
response format for arms that take no ``response_format``.

Escalation and repair keep the original request verbatim (so a model, or the replay pool,
sees the task as asked) and add what went wrong, so the next model does not repeat it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from features.components import Component
from features.query import Message, last_user_text
from router.providers import FunctionCall


def _replace_last_user(messages: Sequence[Message], content: str) -> tuple[Message, ...]:
    out = list(messages)
    for index in range(len(out) - 1, -1, -1):
        if out[index].get("role") == "user":
            out[index] = {"role": "user", "content": content}
            return tuple(out)
    return (*out, {"role": "user", "content": content})


def escalation_messages(
    messages: Sequence[Message], failed_output: str | None, reasons: Sequence[str]
) -> tuple[Message, ...]:
    """The request again, with the rejected answer and the reasons it was rejected
    (``failed_output`` None: the reasons alone, for a shorter and cheaper prompt)."""
    request = last_user_text(messages)
    why = "\n".join(f"- {reason}" for reason in reasons) or "- it was judged wrong"
    if failed_output is None:
        return _replace_last_user(
            messages,
            f"{request}\n\n"
            "---\n"
            "A previous answer to this request was rejected for these reasons:\n"
            f"{why}\n"
            "Answer the request above again, correctly, without repeating those mistakes.",
        )
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


def format_instruction(response_format: Mapping[str, Any]) -> str | None:
    """What a JSON ``response_format`` asks, in words, for a model that cannot take it as a
    parameter; None for a format that asks nothing (``text``)."""
    kind = response_format.get("type")
    if kind == "json_object":
        return "Answer with one JSON object only: no prose and no code fence around it."
    if kind != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        return "Answer with one JSON object only: no prose and no code fence around it."
    return (
        "Answer with one JSON value only, no prose and no code fence around it, that is valid "
        f"against this JSON Schema:\n{json.dumps(schema, sort_keys=True)}"
    )


def with_format_instruction(
    messages: Sequence[Message], response_format: Mapping[str, Any]
) -> tuple[Message, ...]:
    """``messages`` with the format instruction as a system message in front (appended to
    a leading system message when there is one)."""
    instruction = format_instruction(response_format)
    if instruction is None:
        return tuple(messages)
    first = messages[0] if messages else None
    if (
        first is not None
        and first.get("role") == "system"
        and isinstance(first.get("content"), str)
    ):
        merged = {**first, "content": f"{first['content']}\n\n{instruction}"}
        return (merged, *messages[1:])
    return ({"role": "system", "content": instruction}, *messages)


def rendered_answer(text: str, calls: Sequence[FunctionCall]) -> str:
    """An answer as a reviewer reads it: its text, then each tool call it made."""
    lines = [text] if text else []
    lines += [f"tool call: {call.name}({call.arguments})" for call in calls]
    return "\n".join(lines)
