"""``learner.ope.progress.Progress`` as tqdm bars on stderr."""

from __future__ import annotations

import sys
from typing import Never, TextIO

from tqdm import tqdm


class TqdmProgress:
    """One tqdm bar per step; ``enabled=False`` shows nothing."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self._enabled = enabled
        self._stream = stream or sys.stderr
        self._bar: tqdm[Never] | None = None

    def start(self, label: str, total: int) -> None:
        self.finish()
        self._bar = tqdm(
            total=total,
            desc=label,
            unit="dec",
            disable=not self._enabled,
            file=self._stream,
            mininterval=0.5,
            leave=False,
            dynamic_ncols=True,
        )

    def advance(self, units: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(units)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
