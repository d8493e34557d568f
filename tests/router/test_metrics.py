"""Metrics: one registry per service, traces and provider calls counted, state read live."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from features.errors import ProviderServerError, ProviderTimeoutError
from router.metrics import Metrics, mapping_reader
from router.providers import ChatRequest, Completion, Delta, StreamEvent
from router.providers.instrumented import InstrumentedProvider
from router.trace import DecisionTrace

REQUEST = ChatRequest(messages=({"role": "user", "content": "hi"},))


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels."""
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def decision(stage: str, arm: str, outcome: str = "ok", **details: str) -> DecisionTrace:
    return DecisionTrace(
        decision_id="d",
        stage=stage,
        arm=arm,
        probability=0.5,
        pmf={arm: 0.5},
        policy_version=0,
        signals={},
        masked={},
        outcome=outcome,
        reward=0.75,
        details=details,
    )


def completion(latency_ms: float) -> Completion:
    return Completion(
        arm="a",
        text="hello",
        finish_reason="stop",
        prompt_tokens=1,
        completion_tokens=1,
        cost_usd=0.0,
        latency_ms=latency_ms,
    )


class FakeProvider:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    @property
    def arm_name(self) -> str:
        return "a"

    async def complete(self, request: ChatRequest) -> Completion:
        if self.error is not None:
            raise self.error
        return completion(250.0)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        yield Delta("hel")
        if self.error is not None:
            raise self.error
        yield completion(500.0)


def test_each_service_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.decision("pre", "a")
    assert samples(one)[("signalroute_decisions_total", (("arm", "a"), ("stage", "pre")))] == 1
    assert ("signalroute_decisions_total", (("arm", "a"), ("stage", "pre"))) not in samples(two)


def test_a_trace_counts_decisions_rewards_escalations_and_cuts() -> None:
    metrics = Metrics()
    metrics.route(
        [
            decision("pre", "a", "cut: repeats itself", detector="repetition"),
            decision("in", "b"),
            decision("post", "escalate:c"),
        ]
    )
    got = samples(metrics)
    assert got[("signalroute_decisions_total", (("arm", "escalate:c"), ("stage", "post")))] == 1
    assert got[("signalroute_escalations_total", (("to_arm", "c"),))] == 1
    assert got[("signalroute_cuts_total", (("arm", "a"), ("detector", "repetition")))] == 1
    rewards = ("signalroute_rewards_count", (("source", "immediate"), ("stage", "in")))
    assert got[rewards] == 1


async def test_provider_calls_observe_latency_or_count_errors() -> None:
    metrics = Metrics()
    await InstrumentedProvider(FakeProvider(), metrics).complete(REQUEST)
    events = [e async for e in InstrumentedProvider(FakeProvider(), metrics).stream(REQUEST)]
    assert [type(e) for e in events] == [Delta, Completion]
    with pytest.raises(ProviderTimeoutError):
        await InstrumentedProvider(
            FakeProvider(ProviderTimeoutError("t", arm="a")), metrics
        ).complete(REQUEST)
    broken = InstrumentedProvider(FakeProvider(ProviderServerError("cut", arm="a")), metrics)
    with pytest.raises(ProviderServerError):
        _ = [e async for e in broken.stream(REQUEST)]
    got = samples(metrics)
    assert got[("signalroute_provider_latency_seconds_count", (("arm", "a"),))] == 2
    assert got[("signalroute_provider_latency_seconds_sum", (("arm", "a"),))] == 0.75
    assert got[("signalroute_provider_errors_total", (("arm", "a"), ("kind", "provider_timeout")))]
    key = ("signalroute_provider_errors_total", (("arm", "a"), ("kind", "provider_server_error")))
    assert got[key] == 1


def test_watched_gauges_are_read_at_scrape_time() -> None:
    metrics = Metrics()
    spend = {"acme": 1.5}
    metrics.watch("signalroute_test_spend_usd", "spend", ("tenant",), mapping_reader(lambda: spend))
    assert samples(metrics)[("signalroute_test_spend_usd", (("tenant", "acme"),))] == 1.5
    spend["acme"] = 2.0
    assert samples(metrics)[("signalroute_test_spend_usd", (("tenant", "acme"),))] == 2.0
