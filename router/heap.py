"""Garbage collection in a serving process: the heap built at start-up is frozen out of
every collection, and the young generation is collected less often.

Python's cyclic collector walks every tracked object on a full collection. In a router under
load that walk took a sixth to a fifth of the process's time, in pauses of 100-300 ms: the
start-up heap (modules, the app, the runtime) is walked again and again though it lives as
long as the process, and at Python's default young threshold (700 allocations) the many
short-lived objects of a request (contexts, journal rows) are promoted and counted towards
the next full collection before they are freed. Freezing the start-up heap (``gc.freeze``)
takes it out of every later collection; a higher young threshold lets most of a request's
objects die by reference counting first, as they do. Cyclic garbage is still collected, a
little later.

Only the process that serves calls this (``signalroute serve``, each worker): a test process
that builds many apps must not freeze them.
"""

from __future__ import annotations

import gc
from typing import Protocol


class Collector(Protocol):
    """The part of the ``gc`` module this uses."""

    def collect(self, generation: int = 2) -> int: ...

    def freeze(self) -> None: ...

    def get_freeze_count(self) -> int: ...

    def get_threshold(self) -> tuple[int, int, int]: ...

    def set_threshold(self, threshold0: int, threshold1: int, threshold2: int, /) -> None: ...


def settle_heap(young_threshold: int, collector: Collector = gc) -> int | None:
    """Collect once, freeze what is left (the start-up heap), and collect the young
    generation every ``young_threshold`` allocations (the older generations' thresholds
    stay). Returns how many objects are frozen, or None, changing nothing, for a threshold of
    0 (Python's collector as it is). Raises ValueError for a negative threshold."""
    if young_threshold < 0:
        raise ValueError(f"the young threshold must be >= 0, got {young_threshold}")
    if young_threshold == 0:
        return None
    collector.collect()
    collector.freeze()
    _, middle, old = collector.get_threshold()
    collector.set_threshold(young_threshold, middle, old)
    return collector.get_freeze_count()
