"""Tracing off by default and free of layers when off; OTLP export to a real (loopback)
collector over HTTP when on; a clear error when the SDK is missing."""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncGenerator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from features.errors import ConfigError
from router import tracing
from router.pool import Arm
from router.providers.base import ChatRequest, Completion, Delta, StreamEvent
from router.settings import Settings

ARM = Arm(name="small", base_url="http://127.0.0.1:9/v1", model="small-model")


class FixedProvider:
    """A provider whose stream is one known generator object."""

    def __init__(self) -> None:
        self.streams: list[AsyncGenerator[StreamEvent, None]] = []

    @property
    def arm_name(self) -> str:
        return ARM.name

    async def complete(self, request: ChatRequest) -> Completion:
        return Completion(ARM.name, "hi", "stop", 3, 1, 0.0, 1.0)

    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        async def events() -> AsyncGenerator[StreamEvent, None]:
            yield Delta("hi")

        self.streams.append(events())
        return self.streams[-1]


async def test_tracing_is_off_by_default_and_adds_nothing() -> None:
    settings = Settings()
    off = tracing.open_tracing(settings)
    provider = FixedProvider()
    traced = tracing.TracedProvider(provider, ARM)

    stream = traced.stream(ChatRequest(messages=({"role": "user", "content": "hi"},)))
    with tracing.span("nothing", {"a": 1}):
        inside = tracing.log_ids()

    assert settings.otel_exporter == "none"
    assert off.tracer is None
    assert not tracing.enabled()
    assert stream is provider.streams[0]  # no wrapping layer when untraced
    assert [e async for e in stream] == [Delta("hi")]
    assert inside == {}
    assert tracing.started_ns() == 0


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint that keeps what it is sent."""

    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        self.received.append((self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_sends_spans_to_the_configured_collector(collector: str) -> None:
    settings = Settings(
        otel_exporter="otlp",
        otel_endpoint=collector,
        otel_headers={"x-collector-key": "secret"},
        otel_service_name="signalroute-test",
    )
    on = tracing.open_tracing(settings)
    assert on.tracer is not None
    with on.tracer.start_as_current_span("signalroute.test") as span:
        span.set_attribute("signalroute.arm", "small")
        ids = tracing.log_ids()
    on.shutdown()  # flushes the batch processor

    assert ids["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    [(path, headers, body)] = Collector.received
    assert path == "/v1/traces"
    assert headers["x-collector-key"] == "secret"
    export = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = export.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "signalroute-test"
    [sent] = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert sent.name == "signalroute.test"
    assert {a.key: a.value.string_value for a in sent.attributes} == {"signalroute.arm": "small"}


def test_otlp_without_the_sdk_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed

    with pytest.raises(ConfigError, match=r"signalroute\[otel\]"):
        tracing.open_tracing(Settings(otel_exporter="otlp"))


def test_settings_refuse_an_unknown_exporter() -> None:
    with pytest.raises(ValueError, match="otel_exporter"):
        Settings(otel_exporter="jaeger")
