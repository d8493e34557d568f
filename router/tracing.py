"""OpenTelemetry tracing: a span for each HTTP request and, inside it, one for each stage's
decision, each provider call (GenAI semantic conventions) and each store write.

Off by default (``SIGNALROUTE_OTEL_EXPORTER=none``): no tracer exists, the HTTP middleware is
not installed, and every function here returns after reading one context variable. With
``otlp`` the spans go through the SDK's batch processor to an OTLP/HTTP collector (the SDK
and the exporter come with the ``otel`` extra; the API is a main dependency). Tests hand
``create_app`` a tracer of their own (the SDK's in-memory exporter).

The service's modules call only this module's functions; it alone speaks OpenTelemetry. The
tracer is found through a context variable the middleware sets for each request, so the
instrumented code needs no tracer passed down, and code run outside a traced request (the
CLI, benchmarks) traces nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.errors import ConfigError, ProviderError
from router.providers.base import ChatRequest, Completion, Provider, StreamEvent

if TYPE_CHECKING:
    from router.pool import Arm
    from router.settings import Settings

TRACER_NAME = "signalroute"

GEN_AI_PROVIDER = "openai"
"""``gen_ai.provider.name`` (and the older ``gen_ai.system``) of every provider call: the
arms speak OpenAI's Chat Completions protocol; ``server.address`` tells which host served."""

_TRACER: ContextVar[Tracer | None] = ContextVar("signalroute_tracer", default=None)

Attributes = Mapping[str, AttributeValue]


class Decision(Protocol):
    """What a decision span shows of a drawn decision (``router.lifecycle.decisions.Drawn``,
    which imports this module)."""

    @property
    def decision_id(self) -> str: ...
    @property
    def request_id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def probability(self) -> float: ...
    @property
    def policy_name(self) -> str: ...
    @property
    def pmf(self) -> Mapping[str, float]: ...
    @property
    def policy_version(self) -> int: ...


@dataclass(frozen=True)
class Tracing:
    """The service's tracer (None: tracing is off) and how to flush and stop its exporter."""

    tracer: Tracer | None = None
    shutdown: Callable[[], None] = lambda: None


def open_tracing(settings: Settings) -> Tracing:
    """The tracing ``settings`` ask for. Raises ConfigError for ``otlp`` without the SDK."""
    if settings.otel_exporter == "none":
        return Tracing()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:
        raise ConfigError(
            "SIGNALROUTE_OTEL_EXPORTER=otlp needs the OpenTelemetry SDK and OTLP exporter: "
            "pip install 'signalroute[otel]'"
        ) from exc
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.otel_sample_ratio)),
    )
    exporter = OTLPSpanExporter(
        endpoint=settings.otel_endpoint,
        headers=dict(settings.otel_headers) or None,
        timeout=settings.otel_timeout_s,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider.get_tracer(TRACER_NAME), provider.shutdown)


# --- the request span ------------------------------------------------------------------------


class TracingMiddleware:
    """A SERVER span around each HTTP request (``POST /route``), current while it is served;
    the paths under ``skip`` (the in-process replay pool) are not traced."""

    def __init__(self, app: ASGIApp, tracer: Tracer, skip: tuple[str, ...] = ()) -> None:
        self._app = app
        self._tracer = tracer
        self._skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(self._skip):
            await self._app(scope, receive, send)
            return
        method = str(scope.get("method", ""))
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        token = _TRACER.set(self._tracer)
        try:
            with self._tracer.start_as_current_span(
                f"{method} {path}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "url.path": path},
            ) as span:
                try:
                    await self._app(scope, receive, send_status)
                finally:
                    route = getattr(scope.get("route"), "path", None)
                    if isinstance(route, str):
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
        finally:
            _TRACER.reset(token)


# --- spans inside a request ------------------------------------------------------------------


def enabled() -> bool:
    """Whether the current request is traced."""
    return _TRACER.get() is not None


_UNTRACED: AbstractContextManager[object] = nullcontext()


def span(
    name: str, attributes: Attributes | None = None, *, root: bool = False
) -> AbstractContextManager[object]:
    """An INTERNAL span around a ``with`` block, child of the current one (``root``: of
    none, for work shared by many requests); a shared no-op when tracing is off. An
    exception ends it as an error."""
    tracer = _TRACER.get()
    if tracer is None:
        return _UNTRACED
    parent = otel_context.Context() if root else None
    return tracer.start_as_current_span(name, context=parent, attributes=attributes)


def annotate(**attributes: AttributeValue) -> None:
    """Set ``signalroute.<name>`` attributes on the current span (the request's)."""
    if _TRACER.get() is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        for key, value in attributes.items():
            current.set_attribute(f"signalroute.{key}", value)


def store_attributes(operation: str, rows: Mapping[str, int] | None = None) -> Attributes:
    """A store write's span attributes: the database, the operation, rows by kind."""
    return {
        "db.system.name": "postgresql",
        "db.operation.name": operation,
        **{f"signalroute.rows.{kind}": count for kind, count in (rows or {}).items()},
    }


def decided(drawn: Decision, started_ns: int) -> None:
    """A span for one stage's decision, from ``started_ns`` (``time.time_ns()`` before the
    policy was asked) to now: the stage, the arm drawn, its probability and the policy's
    version (its update count), as the decision is logged."""
    tracer = _TRACER.get()
    if tracer is None:
        return
    decision = tracer.start_span(
        f"decide {drawn.stage}",
        start_time=started_ns,
        attributes={
            "signalroute.stage": drawn.stage,
            "signalroute.arm": drawn.action,
            "signalroute.probability": drawn.probability,
            "signalroute.policy.name": drawn.policy_name,
            "signalroute.policy.version": drawn.policy_version,
            "signalroute.arms": len(drawn.pmf),
            "signalroute.decision_id": drawn.decision_id,
            "signalroute.request_id": drawn.request_id,
        },
    )
    decision.end()


def started_ns() -> int:
    """Now, as a span's start time (0 when tracing is off: nothing will use it)."""
    return time.time_ns() if _TRACER.get() is not None else 0


def log_ids() -> dict[str, str]:
    """The current trace and span ids (hex, as tracing back ends show them) for a log line;
    empty outside a traced request."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


# --- provider calls --------------------------------------------------------------------------


class TracedProvider:
    """Wraps an arm's provider: each call is a CLIENT span named ``chat <model>`` with the
    GenAI semantic conventions' attributes (request model and parameters, token usage,
    finish reason, ``error.type`` on failure). A stream's span lasts until it ends."""

    def __init__(self, provider: Provider, arm: Arm) -> None:
        self._provider = provider
        self._arm = arm
        server = urlsplit(arm.base_url)
        self._server: dict[str, AttributeValue] = {"server.address": server.hostname or ""}
        if server.port is not None:
            self._server["server.port"] = server.port

    @property
    def arm_name(self) -> str:
        return self._provider.arm_name

    async def complete(self, request: ChatRequest) -> Completion:
        call = self._start(request, stream=False)
        if call is None:
            return await self._provider.complete(request)
        try:
            completion = await self._provider.complete(request)
        except Exception as exc:
            _failed(call, exc)
            raise
        _finished(call, completion)
        return completion

    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        call = self._start(request, stream=True)
        if call is None:  # untraced: the provider's own stream, no extra layer
            return self._provider.stream(request)
        return self._traced_stream(request, call)

    async def _traced_stream(
        self, request: ChatRequest, call: Span | None
    ) -> AsyncGenerator[StreamEvent, None]:
        events = self._provider.stream(request)
        completion: Completion | None = None
        try:
            async for event in events:
                if isinstance(event, Completion):
                    completion = event
                yield event
        except (GeneratorExit, asyncio.CancelledError):
            raise  # stopped, not failed: see below
        except Exception as exc:
            if call is not None:
                _failed(call, exc)
                call = None
            raise
        finally:
            await events.aclose()
            if call is not None:
                if completion is not None:
                    _finished(call, completion)
                else:  # stopped by the caller (a cut, a client gone)
                    call.set_attribute("signalroute.stream.stopped", True)
                    call.end()

    def _start(self, request: ChatRequest, *, stream: bool) -> Span | None:
        """The call's span (not made current: a stream is consumed across other work)."""
        tracer = _TRACER.get()
        if tracer is None:
            return None
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": GEN_AI_PROVIDER,
            "gen_ai.system": GEN_AI_PROVIDER,
            "gen_ai.request.model": self._arm.model,
            "signalroute.arm": self._arm.name,
            "signalroute.stream": stream,
            **self._server,
        }
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        return tracer.start_span(
            f"chat {self._arm.model}", kind=SpanKind.CLIENT, attributes=attributes
        )


def _finished(call: Span, completion: Completion) -> None:
    call.set_attributes(
        {
            "gen_ai.usage.input_tokens": completion.prompt_tokens,
            "gen_ai.usage.output_tokens": completion.completion_tokens,
            "signalroute.usage.reported": completion.usage_reported,
            "signalroute.cost_usd": completion.cost_usd,
        }
    )
    if completion.finish_reason is not None:
        call.set_attribute("gen_ai.response.finish_reasons", [completion.finish_reason])
    call.end()


def _failed(call: Span, exc: Exception) -> None:
    kind = exc.code if isinstance(exc, ProviderError) else type(exc).__qualname__
    call.set_attribute("error.type", kind)
    call.set_status(Status(StatusCode.ERROR, str(getattr(exc, "message", exc))))
    call.end()
