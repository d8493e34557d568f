"""OpenTelemetry spans of real routed requests (real HTTP, store, VW and replay pool),
caught by the SDK's in-memory exporter: the request, each decision, each provider call with
the GenAI semantic conventions, the store writes, and the trace ids in the JSON logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from router.app import create_app
from router.logs import JsonFormatter
from router.settings import Settings
from tests.router.service.conftest import free_port, run_service

PROMPT = "Write a python function to check whether a number is a perfect square."


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """The service's log lines, formatted as the JSON logs are."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("signalroute")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(previous)


def traced_app(
    exporter: InMemorySpanExporter,
    database_url: str,
    replay_app: FastAPI,
    port: int,
    **overrides: Any,
) -> FastAPI:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(database_url=database_url, port=port, seed=1, **overrides)
    return create_app(settings, replay_app=replay_app, tracer=provider.get_tracer("test"))


def named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_routed_request_is_traced_end_to_end(
    exporter: InMemorySpanExporter,
    logged: io.StringIO,
    database_url: str,
    replay_app: FastAPI,
) -> None:
    port = free_port()
    app = traced_app(exporter, database_url, replay_app, port, snapshot_every=1)
    async with run_service(app, port) as client:
        response = await client.post(
            "/route-and-run", json={"messages": [{"role": "user", "content": PROMPT}]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
    spans = exporter.get_finished_spans()  # the service has stopped: every write is done

    [server] = [s for s in spans if s.name == "POST /route-and-run"]
    assert server.kind == SpanKind.SERVER
    assert attributes(server)["http.route"] == "/route-and-run"
    assert attributes(server)["http.response.status_code"] == 200
    assert attributes(server)["signalroute.request_id"] == body["id"]
    trace_id = server.context.trace_id
    in_request = [s for s in spans if s.context.trace_id == trace_id]

    decisions = named(tuple(in_request), "decide ")
    traced = {attributes(s)["signalroute.decision_id"]: attributes(s) for s in decisions}
    for decision in body["trace"]["decisions"]:
        span = traced[decision["decision_id"]]
        assert span["signalroute.stage"] == decision["stage"]
        assert span["signalroute.arm"] == decision["arm"]
        assert span["signalroute.probability"] == pytest.approx(decision["probability"])
        assert span["signalroute.policy.version"] == decision["policy_version"]

    calls = named(tuple(in_request), "chat ")
    assert calls, [s.name for s in spans]
    pre = body["trace"]["decisions"][0]
    answered = [c for c in calls if attributes(c)["signalroute.arm"] == pre["arm"]]
    call = attributes(answered[0])
    assert answered[0].kind == SpanKind.CLIENT
    assert answered[0].parent is not None
    assert answered[0].parent.span_id == server.context.span_id
    assert call["gen_ai.operation.name"] == "chat"
    assert call["gen_ai.provider.name"] == "openai"
    assert call["gen_ai.request.model"] == answered[0].name.removeprefix("chat ")
    assert call["gen_ai.usage.input_tokens"] > 0
    assert call["gen_ai.usage.output_tokens"] > 0
    assert call["server.address"] == "127.0.0.1"
    assert not any(s.name.startswith("POST /replay") for s in spans)  # the pool's own side

    writes = [attributes(s) for s in spans if s.name == "signalroute.store.write"]
    assert {w["db.system.name"] for w in writes} == {"postgresql"}
    assert sum(w["signalroute.rows.requests"] for w in writes) == 1
    assert sum(w["signalroute.rows.decisions"] for w in writes) == len(body["trace"]["decisions"])
    assert sum(w["signalroute.rows.completed"] for w in writes) == 1

    snapshots = [attributes(s) for s in spans if s.name == "signalroute.store.save_snapshot"]
    assert {a["signalroute.stage"] for a in snapshots} == {
        d["stage"] for d in body["trace"]["decisions"]
    }
    assert all(a["signalroute.policy.version"] >= 1 for a in snapshots)

    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    answered_line = next(line for line in lines if "answered by" in line["message"])
    assert answered_line["trace_id"] == f"{trace_id:032x}"
    assert answered_line["span_id"] == f"{server.context.span_id:016x}"
    access = next(line for line in lines if line["message"].startswith("POST /route-and-run"))
    assert access["trace_id"] == f"{trace_id:032x}"
    untraced = next(line for line in lines if line["message"].startswith("ready:"))
    assert "trace_id" not in untraced


async def test_decide_only_and_feedback_are_traced(
    exporter: InMemorySpanExporter, database_url: str, replay_app: FastAPI
) -> None:
    port = free_port()
    async with run_service(traced_app(exporter, database_url, replay_app, port), port) as client:
        decided = (
            await client.post("/route", json={"messages": [{"role": "user", "content": PROMPT}]})
        ).json()
        rewarded = await client.post(
            "/feedback", json={"decision_id": decided["decision_id"], "reward": 0.5}
        )
        assert rewarded.status_code == 201
        spans = exporter.get_finished_spans()

    [route] = [s for s in spans if s.name == "POST /route"]
    [decision] = [s for s in spans if s.name == "decide pre"]
    assert decision.context.trace_id == route.context.trace_id
    assert attributes(decision)["signalroute.arm"] == decided["arm"]
    assert attributes(decision)["signalroute.probability"] == pytest.approx(decided["probability"])
    assert not named(spans, "chat ")  # no model was called
    [feedback] = [s for s in spans if s.name == "POST /feedback"]
    [recorded] = [s for s in spans if s.name == "signalroute.store.record_rewards"]
    assert recorded.context.trace_id == feedback.context.trace_id
