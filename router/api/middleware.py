"""The HTTP middleware: a request id for every request, its access log line and its metrics.

A pure ASGI middleware (streamed bodies pass through untouched). The id is the caller's
``x-request-id`` when it sends a sane one, else a new one; it is echoed in the response's
``x-request-id`` header and set in ``router.logs.REQUEST_ID`` while the request is served.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.logs import REQUEST_ID
from router.metrics import Metrics

access_log = logging.getLogger("signalroute.access")

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

UNMATCHED = "unmatched"
"""The endpoint label of requests no route matched (keeps label values bounded)."""


def endpoint_label(scope: Scope) -> str:
    """The route template that served the request (``/requests/{request_id}``), not its path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return str(scope.get("root_path", "")) + path


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = self._clock()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            duration_ms = (self._clock() - started) * 1000.0
            endpoint = endpoint_label(scope)
            method = str(scope.get("method", ""))
            self._metrics.http_request(endpoint, method, status, duration_ms)
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                scope.get("path", ""),
                status,
                duration_ms,
                extra={"status": status, "duration_ms": round(duration_ms, 2)},
            )
            REQUEST_ID.reset(token)
