"""Size limits at the HTTP edge: the request body, and the prompt a chat request carries.

A body over ``SIGNALROUTE_MAX_BODY_BYTES`` gets 413 before it is parsed: at once when its
``content-length`` says so, else as soon as the bytes read pass the limit (a chunked body is
read into memory only up to the limit). A parsed chat request may hold at most
``SIGNALROUTE_MAX_MESSAGES`` messages (400) and ``SIGNALROUTE_MAX_PROMPT_CHARS`` characters
of text (413): bounds on the work the signals do before any arm's context window is checked.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.errors import PayloadTooLargeError, RequestError
from router.api.errors import error_body
from router.api.schemas import ChatMessage
from router.settings import Settings


class BodyLimitMiddleware:
    """Answer 413 with a JSON error for a request body larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self._max_bytes:
                await self._reject(scope, receive, send, f"is {declared} bytes")
                return
            await self._app(scope, receive, send)  # the server stops at content-length
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self._max_bytes:
                await self._reject(scope, receive, send, f"passed {self._max_bytes} bytes")
                return
            if not message.get("more_body", False):
                break
        buffered = iter(messages)

        async def replay() -> Message:
            return next(buffered, None) or await receive()

        await self._app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        message = (
            f"the request body {size}; this router accepts at most {self._max_bytes} bytes "
            "(SIGNALROUTE_MAX_BODY_BYTES)"
        )
        response = JSONResponse(
            error_body(PayloadTooLargeError.code, message),
            status_code=PayloadTooLargeError.status_code,
            headers={"connection": "close"},  # the rest of the body is not read
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def text_chars(message: ChatMessage) -> int:
    """Characters of text in a message: its string content or its text parts."""
    content = message.content
    if isinstance(content, str):
        return len(content)
    if content is None:
        return 0
    return sum(len(text) for part in content if isinstance(text := part.get("text"), str))


def check_prompt_size(messages: Sequence[ChatMessage], settings: Settings) -> None:
    """Raise RequestError (400) for too many messages, PayloadTooLargeError (413) for too
    much text, naming the limit and the setting that raises it."""
    if len(messages) > settings.max_messages:
        raise RequestError(
            f"messages: {len(messages)} messages; at most {settings.max_messages} are accepted "
            "(SIGNALROUTE_MAX_MESSAGES)"
        )
    chars = sum(text_chars(m) for m in messages)
    if chars > settings.max_prompt_chars:
        raise PayloadTooLargeError(
            f"messages: {chars} characters of text; at most {settings.max_prompt_chars} are "
            "accepted (SIGNALROUTE_MAX_PROMPT_CHARS)"
        )
