"""How long-running OPE steps report progress without printing: an injected ``Progress``."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """One step at a time: ``start`` a step of ``total`` units, ``advance``, ``finish``."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, units: int = 1) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """Reports nothing (the default; tests and library use)."""

    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, units: int = 1) -> None:
        return None

    def finish(self) -> None:
        return None


SILENT: Progress = NoProgress()
"""The shared do-nothing ``Progress``, the default of every OPE step."""
