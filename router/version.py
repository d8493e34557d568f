"""The version of the installed ``signalroute`` distribution (from its metadata, so that
``signalroute --version`` and the API's OpenAPI document cannot disagree with the wheel)."""

from __future__ import annotations

from importlib import metadata


def installed_version() -> str:
    """The installed distribution's version; ``unknown`` for a source tree never installed."""
    try:
        return metadata.version("signalroute")
    except metadata.PackageNotFoundError:
        return "unknown"
