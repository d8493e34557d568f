"""The service process's garbage collector, set for serving once start-up is done.

Python's cyclic collector runs when the container objects allocated since its last run pass
a threshold (700 for the youngest generation), and every run of the oldest generation walks
every tracked object of the process. After start-up most of them are the runtime's own and
live as long as it does: the pool, the policies, the embedder's caches, the history index's
rows, the imported modules. A walk over them costs time and, worse, evicts the caches the
next request's decision needs.

``serving_collector`` collects once, freezes what survives (``gc.freeze``: the collector no
longer walks it) and raises the youngest generation's threshold, so a request rarely pays
for a collection; it returns what undoes both, for the service's shutdown. Objects allocated
later are collected as before, so a cycle created while serving is still freed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

YOUNG_THRESHOLD = 5_000
"""Allocations between two collections of the youngest generation while serving (Python's
default is 700; a routed request allocates a few hundred)."""


def serving_collector(young_threshold: int = YOUNG_THRESHOLD) -> Callable[[], None]:
    """Collect, freeze what start-up left, and collect the youngest generation every
    ``young_threshold`` allocations; return what restores the collector as it was."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, thresholds[1], thresholds[2])

    def restore() -> None:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

    return restore
