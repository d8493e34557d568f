"""The serving process's collector: start-up's objects frozen, young collections rarer, and
both undone on restore; a cycle made while serving is still collected."""

from __future__ import annotations

import gc
import weakref

from router.collector import YOUNG_THRESHOLD, serving_collector


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_start_up_is_frozen_and_restored() -> None:
    before = gc.get_threshold()
    kept = [_Node() for _ in range(100)]  # alive at start-up: frozen
    restore = serving_collector()
    try:
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        first, second = _Node(), _Node()  # a cycle made while serving
        first.other, second.other = second, first
        gone = weakref.ref(first)
        del first, second
        gc.collect()
        assert gone() is None
    finally:
        restore()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
