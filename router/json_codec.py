"""JSON on the request path: orjson where it can, the standard library where it cannot.

A routed answer's body is rendered, and a streamed provider's chunks parsed, once a request:
the standard library took 45 µs for a routed answer's 3 kB body where orjson takes 3 µs, and
2.4 µs against 0.7 µs a chunk. Whatever orjson refuses (to render: an integer past 64 bits,
a key that is not a string or a number; to parse: a ``NaN`` a provider wrote) goes to the
standard library, which then answers or fails as before. Two differences are kept: a
``NaN`` or an infinity in a body rendered here becomes ``null``, where the standard library
refuses the whole body; and orjson parses an integer past 64 bits as a float (a stream
chunk's numbers are token counts, indexes and timestamps).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, as Starlette's ``JSONResponse`` renders it (but a
    ``NaN`` or an infinity as ``null``)."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")


def loads(text: str | bytes) -> Any:
    """Parse JSON ``text``; json.JSONDecodeError when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
