"""Which arm served a conversation's previous turn, so its next turn can stay there.

Switching models mid-conversation breaks providers' prompt caching and each model's
tool-call habits, so the previous turn's arm is a routing feature, a switch costs reward and
a profile may pin the conversation to it (``Stickiness``).

A turn is found by its messages: every request is logged with ``turn_key(messages)``, and
the next turn of a conversation repeats those messages, then the answer (the last assistant
message) and what follows; ``previous_turn_key`` is the key of what came before that answer.
A ``session`` finds it too, when the messages do not. The newest turns are also kept in
memory (``RecentTurns``), since a turn's row may reach the store after the next turn starts.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

Stickiness = Literal["prefer", "pin", "free"]
"""``prefer``: the previous turn's arm is a feature and switching costs ``switch_cost`` of
reward; ``pin``: the turn goes to that arm while it is eligible (a cut, an error or a mask
moves it); ``free``: neither."""

_KEPT = ("role", "content", "name", "tool_calls", "tool_call_id")


def turn_key(messages: Sequence[Mapping[str, Any]]) -> str:
    """A stable key of a request's messages (their role, content, name and tool fields)."""
    canonical = [{k: m[k] for k in _KEPT if m.get(k) is not None} for m in messages]
    return hashlib.sha256(_canonical_json(canonical)).hexdigest()


def _canonical_json(canonical: list[dict[str, Any]]) -> bytes:
    """``canonical`` as compact UTF-8 JSON with sorted keys, characters not escaped. Messages
    of strings alone (most) go to orjson, which renders them byte for byte as the standard
    library does (every code point but a lone surrogate, which it refuses) in a tenth of the
    time; the rest (content parts, tool calls: numbers could render differently) and a lone
    surrogate go to the standard library, as every key did before."""
    if all(type(value) is str for message in canonical for value in message.values()):
        try:
            return orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def previous_turn_key(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The key of the request whose answer is the last assistant message; None when the
    messages hold no assistant message (a first turn)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "assistant":
            return turn_key(messages[:index])
    return None


class RecentTurns:
    """The arms of the newest ``capacity`` turns by turn key (this process's)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._arms: OrderedDict[tuple[str, str], str] = OrderedDict()

    def served(self, tenant: str, key: str, arm: str) -> None:
        self._arms[(tenant, key)] = arm
        self._arms.move_to_end((tenant, key))
        while len(self._arms) > self._capacity:
            self._arms.popitem(last=False)

    def arm(self, tenant: str, key: str) -> str | None:
        return self._arms.get((tenant, key))
