"""A turn's key: the same key for the same messages, whatever renders them (the keys of
turns already stored must still find them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from router.conversations import RecentTurns, previous_turn_key, turn_key

_KEPT = ("role", "content", "name", "tool_calls", "tool_call_id")


def reference_key(messages: Sequence[Mapping[str, Any]]) -> str:
    """The key's definition: the kept fields as compact JSON, keys sorted, characters not
    escaped, SHA-256 of its UTF-8."""
    canonical = [{k: m[k] for k in _KEPT if m.get(k) is not None} for m in messages]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def random_text(rng: np.random.Generator) -> str:
    alphabet = ["a", " ", "\n", "\t", '"', "\\", "/", "\x00", "\x1f", "\x7f", "é", "東", "\u2028"]
    alphabet += ["\U0001f600", "\ufeff", "\x08", "\x0c", "</script>"]
    return "".join(rng.choice(alphabet, size=int(rng.integers(0, 40))))


def test_the_key_of_string_messages_is_its_definition() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        messages = [
            {
                "role": str(rng.choice(["system", "user", "assistant", "tool"])),
                "content": random_text(rng),
                **({"name": random_text(rng)} if rng.random() < 0.3 else {}),
                **({"tool_call_id": "call_1"} if rng.random() < 0.2 else {}),
                "ignored": "not part of the key",
            }
            for _ in range(int(rng.integers(1, 5)))
        ]
        assert turn_key(messages) == reference_key(messages)


def test_every_code_point_renders_as_its_definition() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    messages = [{"role": "user", "content": text}]
    assert turn_key(messages) == reference_key(messages)


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]}],
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
        [{"role": "user", "content": [{"type": "text", "text": "x", "weight": 1e16}]}],
        [{"role": "user", "content": [{"type": "text", "text": "x", "weight": 1e-05}]}],
        [{"role": "user", "content": [{"type": "text", "text": "x", "n": 2**70}]}],
    ],
)
def test_the_key_of_other_messages_is_its_definition(messages: list[dict[str, Any]]) -> None:
    assert turn_key(messages) == reference_key(messages)


def test_a_lone_surrogate_fails_as_it_always_did() -> None:
    messages = [{"role": "user", "content": "broken \ud800 text"}]
    with pytest.raises(UnicodeEncodeError):
        reference_key(messages)
    with pytest.raises(UnicodeEncodeError):
        turn_key(messages)


def test_the_previous_turn_is_what_came_before_the_last_answer() -> None:
    first = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    second = [*first, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "?"}]
    assert previous_turn_key(first) is None
    assert previous_turn_key(second) == turn_key(first)


def test_recent_turns_keep_the_newest() -> None:
    recent = RecentTurns(capacity=2)
    recent.served("t", "k1", "a")
    recent.served("t", "k2", "b")
    recent.served("t", "k3", "c")
    assert recent.arm("t", "k1") is None
    assert (recent.arm("t", "k2"), recent.arm("t", "k3")) == ("b", "c")
    assert recent.arm("other", "k3") is None
