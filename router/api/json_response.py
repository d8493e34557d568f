"""The JSON response of the request path's endpoints, rendered by ``features.json_codec``."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from features import json_codec


class FastJSONResponse(JSONResponse):
    """Starlette's ``JSONResponse``, rendered by orjson: the same values (a float may be
    written another way: ``0.000075`` for ``7.5e-05``), a tenth of the time for a routed answer."""

    def render(self, content: Any) -> bytes:
        return json_codec.dumps(content)
