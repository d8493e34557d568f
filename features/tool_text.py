"""Tool calls written in an answer's text, by models that answer a tool request in prose.

A model without native function calling (or one that falls back to text) writes its calls in
one of a few shapes; :func:`parse_tool_calls` reads them into :class:`ToolCall` values so the
checks of :mod:`features.tool_calls` apply to them as to native calls:

- JSON: a list of ``{name: "<arguments>"}`` (the record form of native calls), a call
  ``{"name": ..., "arguments": ...}`` or a list of them, or ``{"tool_calls": [...]}``;
- ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (Hermes-style markup);
  a block that is not JSON still yields its call, with the arguments text as written;
- Python call syntax: ``f(a=1)``, ``[f(a=1), g.h(b="x")]``, one call a line, optionally in a
  code fence. Literal keyword values become JSON; any other expression is kept as its source
  text (a string: right for parameters that take code, a schema failure for a number);
  positional arguments cannot be named, so such a call's arguments are its source text,
  which is not JSON.

Text in none of these shapes (prose, an answer that explains instead of calling) has no
calls: :func:`parse_tool_calls` returns None.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from features.tool_calls import ToolCall

_TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_NAME_FIELD = re.compile(r'"name"\s*:\s*"([^"]*)"')
_ARGUMENTS_FIELD = re.compile(r'"arguments"\s*:\s*')
_FENCE = re.compile(r"^```[a-zA-Z0-9_+-]*[ \t]*\r?\n(.*?)\r?\n?```$", re.DOTALL)


def parse_tool_calls(text: str) -> tuple[ToolCall, ...] | None:
    """The calls written in ``text`` (see the module contract), or None when it has none."""
    stripped = text.strip()
    if not stripped:
        return None
    if "<tool_call>" in stripped:
        return _markup_calls(stripped)
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return _python_calls(stripped)
    return _json_calls(value)


def _json_calls(value: Any) -> tuple[ToolCall, ...] | None:
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    calls: list[ToolCall] = []
    for item in items:
        call = _json_call(item)
        if call is None:
            return None
        calls.extend(call)
    return tuple(calls) if calls else None


def _json_call(item: Any) -> list[ToolCall] | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("name"), str) and "arguments" in item:
        return [ToolCall(item["name"], _arguments_text(item["arguments"]))]
    if isinstance(item.get("function"), dict):  # an OpenAI tool_calls entry
        return _json_call(item["function"])
    if item and all(isinstance(v, str | dict) for v in item.values()):  # {name: arguments}
        return [ToolCall(name, _arguments_text(arguments)) for name, arguments in item.items()]
    return None


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _markup_calls(text: str) -> tuple[ToolCall, ...] | None:
    calls: list[ToolCall] = []
    for body in (m.group(1).strip() for m in _TOOL_CALL_BLOCK.finditer(text)):
        try:
            parsed = _json_calls(json.loads(body))
        except json.JSONDecodeError:
            parsed = None
        if parsed is not None:
            calls.extend(parsed)
            continue
        name = _NAME_FIELD.search(body)
        at = _ARGUMENTS_FIELD.search(body)
        if name is None and at is None:
            continue
        arguments = _balanced(body[at.end() :]) if at is not None else ""
        calls.append(ToolCall(name.group(1) if name else "", arguments))
    return tuple(calls) if calls else None


def _balanced(text: str) -> str:
    """The leading ``{...}`` of ``text`` by brace depth outside double-quoted strings (the
    whole rest when it never closes): the arguments a model wrote, however broken."""
    depth, in_string, escaped = 0, False, False
    for at, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth <= 0:
                return text[: at + 1]
    return text.rstrip()


def _python_calls(text: str) -> tuple[ToolCall, ...] | None:
    fenced = _FENCE.match(text)
    source = fenced.group(1).strip() if fenced else text
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError:
        return None
    expressions: list[ast.expr] = []
    for statement in tree.body:
        if not isinstance(statement, ast.Expr):
            return None
        value = statement.value
        items = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
        expressions.extend(items)
    if not expressions or not all(isinstance(e, ast.Call) for e in expressions):
        return None
    calls = []
    for expression in expressions:
        assert isinstance(expression, ast.Call)
        name = _dotted(expression.func)
        if name is None:
            return None
        calls.append(ToolCall(name, _python_arguments(expression, source)))
    return tuple(calls)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _python_arguments(call: ast.Call, source: str) -> str:
    if call.args or any(k.arg is None for k in call.keywords):  # positional, or **kwargs
        inner = ast.get_source_segment(source, call) or ""
        return inner[inner.find("(") + 1 : inner.rfind(")")].strip() or inner
    arguments: dict[str, Any] = {}
    for keyword in call.keywords:
        assert keyword.arg is not None
        try:
            value = ast.literal_eval(keyword.value)
            json.dumps(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value = ast.get_source_segment(source, keyword.value) or ast.unparse(keyword.value)
        arguments[keyword.arg] = value
    return json.dumps(arguments)
