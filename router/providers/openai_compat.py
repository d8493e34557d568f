"""An OpenAI-compatible chat-completions client over an injected ``httpx.AsyncClient``.

Every failure leaves here as a ``features.errors.ProviderError`` subclass naming the arm:
timeouts, refused connections, 429 (with its Retry-After), 5xx, other 4xx, bodies that are not
chat completions, and streams that end before they finish.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from features import json_codec
from features.errors import (
    ProviderBadResponseError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderServerError,
    ProviderTimeoutError,
)
from router.pool import Arm
from router.providers.base import (
    ChatRequest,
    Completion,
    Delta,
    FunctionCall,
    RateLimit,
    StreamEvent,
    ToolCallDelta,
)
from router.providers.sse import DONE, event_batches

Clock = Callable[[], float]

log = logging.getLogger("signalroute.providers")


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token) for providers that report no usage."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit:
    """Read the ``x-ratelimit-{remaining,limit}-{requests,tokens}`` headers."""

    def number(name: str) -> int | None:
        raw = headers.get(name)
        try:
            return int(float(raw)) if raw is not None else None
        except ValueError:
            return None

    return RateLimit(
        remaining_requests=number("x-ratelimit-remaining-requests"),
        limit_requests=number("x-ratelimit-limit-requests"),
        remaining_tokens=number("x-ratelimit-remaining-tokens"),
        limit_tokens=number("x-ratelimit-limit-tokens"),
    )


def usage_reported(usage: Any) -> bool:
    """Whether a usage object holds the provider's own prompt and completion counts."""
    return isinstance(usage, dict) and all(
        isinstance(usage.get(key), int) and not isinstance(usage.get(key), bool)
        for key in ("prompt_tokens", "completion_tokens")
    )


def _function_call(entry: Any) -> FunctionCall:
    """A ``message.tool_calls`` entry (TypeError/KeyError when it is not one)."""
    function = entry["function"]
    call = FunctionCall(entry["id"], function["name"], function.get("arguments") or "")
    if not all(isinstance(v, str) for v in (call.id, call.name, call.arguments)):
        raise TypeError("a tool call's id, name or arguments is not a string")
    return call


def _error_message(response: httpx.Response) -> str:
    """The provider's own error message when it sent one, else the start of its body."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:200]
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return response.text[:200]


_TAILS: set[asyncio.Task[None]] = set()
"""Streams whose body's end is being read (kept here: the loop holds tasks weakly)."""


def read_to_end_later(response: httpx.Response, events: AsyncIterator[list[bytes]]) -> None:
    """Read what follows a stream's ``[DONE]`` (the end of its body) in a task of its own,
    then close the response. Left unread, the connection would be closed instead of going
    back to the pool (a new connection per call costs the router and the provider); read
    before answering, the answer would wait for bytes it does not need."""

    async def read() -> None:
        try:
            async for _ in events:
                pass
        except Exception as exc:  # the answer is whole; the connection is dropped
            log.debug("a stream's end could not be read: %s: %s", type(exc).__name__, exc)
        finally:
            await response.aclose()

    task = asyncio.create_task(read())
    _TAILS.add(task)
    task.add_done_callback(_TAILS.discard)


class OpenAICompatProvider:
    """The model behind one arm, reached over OpenAI-compatible HTTP."""

    def __init__(self, arm: Arm, client: httpx.AsyncClient, *, clock: Clock = time.perf_counter):
        self._arm = arm
        self._client = client
        self._clock = clock
        self._url = f"{arm.base_url}/chat/completions"
        self._endpoint = httpx.URL(self._url)  # parsed once: httpx parses a string per call
        self._timeout = httpx.Timeout(arm.timeout_s, connect=min(arm.timeout_s, 10.0))

    @property
    def arm_name(self) -> str:
        return self._arm.name

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        key = self._arm.api_key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        name = self._arm.name
        message = f"{name}: HTTP {status} from {self._url}: {_error_message(response)}"
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise ProviderRateLimitedError(message, arm=name, retry_after_s=retry_after)
        if status >= 500:
            raise ProviderServerError(message, arm=name)
        raise ProviderRejectedError(message, arm=name)

    def _translate(self, exc: httpx.HTTPError) -> ProviderError:
        name = self._arm.name
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeoutError(
                f"{name}: no answer from {self._url} within {self._arm.timeout_s:g}s", arm=name
            )
        return ProviderServerError(
            f"{name}: {type(exc).__name__} talking to {self._url}: {exc}", arm=name
        )

    def _cost(self, usage: Mapping[str, Any], prompt_tokens: int, completion_tokens: int) -> float:
        """The provider's reported cost when it gives one, else the arm's list price."""
        for key in ("cost_usd", "cost"):
            value = usage.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
        return self._arm.price_usd(prompt_tokens, completion_tokens)

    def _usage(self, usage: Any, request: ChatRequest, text: str) -> tuple[int, int, float]:
        usage = usage if isinstance(usage, dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int):
            prompt_tokens = sum(
                estimate_tokens(str(m.get("content", ""))) for m in request.messages
            )
        if not isinstance(completion_tokens, int):
            completion_tokens = estimate_tokens(text)
        return prompt_tokens, completion_tokens, self._cost(usage, prompt_tokens, completion_tokens)

    async def complete(self, request: ChatRequest) -> Completion:
        """One non-streaming chat completion."""
        started = self._clock()
        try:
            response = await self._client.post(
                self._endpoint,
                content=json_codec.dumps(request.body(self._arm.model, stream=False)),
                headers=self._headers(),
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        self._raise_for_status(response)
        latency_ms = (self._clock() - started) * 1000.0
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"]["content"] or ""
            finish_reason = choice.get("finish_reason")
            if not isinstance(text, str):
                raise TypeError("message.content is not a string")
            calls = tuple(_function_call(c) for c in choice["message"].get("tool_calls") or ())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderBadResponseError(
                f"{self._arm.name}: not a chat completion ({type(exc).__name__}: {exc})",
                arm=self._arm.name,
            ) from exc
        prompt_tokens, completion_tokens, cost = self._usage(payload.get("usage"), request, text)
        return Completion(
            arm=self._arm.name,
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            latency_ms=latency_ms,
            first_token_ms=latency_ms,
            rate_limit=parse_rate_limit(response.headers),
            headers=dict(response.headers),
            usage_reported=usage_reported(payload.get("usage")),
            tool_calls=calls,
        )

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Stream a chat completion: text ``Delta``s, then one ``Completion``.

        A stream that ends without ``[DONE]`` or a finish reason raises ProviderServerError;
        a gap longer than the arm's timeout between chunks raises ProviderTimeoutError.
        """
        started = self._clock()
        first_token_ms: float | None = None
        parts: list[str] = []
        finish_reason: str | None = None
        usage: Any = None
        calls: dict[int, list[ToolCallDelta]] = {}
        done = False
        try:
            response = await self._client.send(
                self._client.build_request(
                    "POST",
                    self._endpoint,
                    content=json_codec.dumps(request.body(self._arm.model, stream=True)),
                    headers=self._headers(),
                    timeout=self._timeout,
                ),
                stream=True,
            )
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        batches = event_batches(response.aiter_bytes())
        try:
            if response.status_code >= 400:
                await response.aread()
                self._raise_for_status(response)
            headers = dict(response.headers)
            # The text of the events that arrived together goes on as one delta: each delta
            # passes through the detectors and every layer above, an event at a time it
            # would cost them all once per event.
            pending: list[str] = []
            async for batch in batches:
                found: list[Delta | ToolCallDelta] = []
                failure: ProviderError | None = None
                try:
                    for data in batch:
                        if data == DONE:
                            done = True
                            break
                        chunk = self._parse_chunk(data)
                        if chunk.get("usage"):
                            usage = chunk["usage"]
                        for choice in chunk.get("choices") or ():
                            delta = choice.get("delta") or {}
                            piece = delta.get("content")
                            if isinstance(piece, str) and piece:
                                if first_token_ms is None:
                                    first_token_ms = (self._clock() - started) * 1000.0
                                parts.append(piece)
                                pending.append(piece)
                            for entry in delta.get("tool_calls") or ():
                                call = self._tool_call_delta(entry)
                                if first_token_ms is None:
                                    first_token_ms = (self._clock() - started) * 1000.0
                                calls.setdefault(call.index, []).append(call)
                                if pending:  # the text before it goes first
                                    found.append(Delta("".join(pending)))
                                    pending.clear()
                                found.append(call)
                            if choice.get("finish_reason"):
                                finish_reason = choice["finish_reason"]
                except ProviderError as exc:  # what came before the bad event still goes on
                    failure = exc
                if pending:
                    found.append(Delta("".join(pending)))
                    pending.clear()
                for event in found:
                    yield event
                if failure is not None:
                    raise failure
                if done:
                    break
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        finally:
            if done:  # the answer is whole: the body's end is read without it waiting
                read_to_end_later(response, batches)
            else:
                await response.aclose()
        if not done and finish_reason is None:
            raise ProviderServerError(
                f"{self._arm.name}: stream from {self._url} ended before it finished "
                f"({sum(map(len, parts))} characters received)",
                arm=self._arm.name,
            )
        text = "".join(parts)
        prompt_tokens, completion_tokens, cost = self._usage(usage, request, text)
        yield Completion(
            arm=self._arm.name,
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            latency_ms=(self._clock() - started) * 1000.0,
            first_token_ms=first_token_ms,
            rate_limit=parse_rate_limit(headers),
            headers=headers,
            usage_reported=usage_reported(usage),
            tool_calls=tuple(self._assembled(calls[i]) for i in sorted(calls)),
        )

    def _tool_call_delta(self, entry: Any) -> ToolCallDelta:
        """One ``delta.tool_calls`` entry; ProviderBadResponseError when it is malformed."""
        try:
            index = entry["index"]
            function = entry.get("function") or {}
            arguments = function.get("arguments") or ""
            call_id, name = entry.get("id"), function.get("name")
            if not isinstance(index, int) or not isinstance(arguments, str):
                raise TypeError("index is not an integer or arguments not a string")
            if not (call_id is None or isinstance(call_id, str)) or not (
                name is None or isinstance(name, str)
            ):
                raise TypeError("id or function.name is not a string")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProviderBadResponseError(
                f"{self._arm.name}: malformed tool-call delta ({exc}): {str(entry)[:120]}",
                arm=self._arm.name,
            ) from exc
        return ToolCallDelta(index, call_id, name, arguments)

    def _assembled(self, pieces: list[ToolCallDelta]) -> FunctionCall:
        call_id = next((p.id for p in pieces if p.id), None)
        name = next((p.name for p in pieces if p.name), None)
        if call_id is None or name is None:
            raise ProviderBadResponseError(
                f"{self._arm.name}: streamed tool call {pieces[0].index} has no id or name",
                arm=self._arm.name,
            )
        return FunctionCall(call_id, name, "".join(p.arguments for p in pieces))

    def _parse_chunk(self, data: bytes) -> dict[str, Any]:
        try:
            chunk = json_codec.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            shown = data[:120].decode("utf-8", "replace")
            raise ProviderBadResponseError(
                f"{self._arm.name}: stream chunk is not JSON: {shown!r}", arm=self._arm.name
            ) from exc
        if not isinstance(chunk, dict):
            shown = data[:120].decode("utf-8", "replace")
            raise ProviderBadResponseError(
                f"{self._arm.name}: stream chunk is not an object: {shown!r}",
                arm=self._arm.name,
            )
        return chunk
