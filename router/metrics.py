"""Prometheus metrics of one service: a ``Metrics`` object owns its own ``CollectorRegistry``.

Nothing is registered globally, so two apps in one process (tests) never collide. The HTTP
middleware, the API layer and the provider wrapper call the recording methods; gauges that
mirror live state (tenant spend, policy updates, circuits) are read at scrape time.

Latencies are exported in seconds, the Prometheus convention; the methods take ``_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.lifecycle.stages import ESCALATE_PREFIX, ESCALATION
from router.trace import DecisionTrace

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
REWARD_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class Metrics:
    """The service's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._http = Counter(
            "signalroute_http_requests",
            "HTTP requests served, by route template, method and status code.",
            ("endpoint", "method", "status"),
            registry=r,
        )
        self._http_seconds = Histogram(
            "signalroute_http_request_duration_seconds",
            "Time to serve an HTTP request (to the end of a streamed body).",
            ("endpoint",),
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._decisions = Counter(
            "signalroute_decisions",
            "Routing decisions, by lifecycle stage and the arm (or action) drawn.",
            ("stage", "arm"),
            registry=r,
        )
        self._escalations = Counter(
            "signalroute_escalations",
            "Escalation steps: answers sent to another arm after validation or judging "
            "(a chain counts each step).",
            ("to_arm",),
            registry=r,
        )
        self._cuts = Counter(
            "signalroute_cuts",
            "Runs cut during generation, by arm and the detector that fired.",
            ("arm", "detector"),
            registry=r,
        )
        self._rewards = Histogram(
            "signalroute_rewards",
            "Rewards recorded, by stage and source (immediate checks or delayed feedback).",
            ("stage", "source"),
            buckets=REWARD_BUCKETS,
            registry=r,
        )
        self._provider_seconds = Histogram(
            "signalroute_provider_latency_seconds",
            "Provider call latency (to the last streamed token), successful calls only.",
            ("arm",),
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._provider_errors = Counter(
            "signalroute_provider_errors",
            "Failed provider calls, by arm and kind (the error code).",
            ("arm", "kind"),
            registry=r,
        )
        self._budget_rejections = Counter(
            "signalroute_budget_rejections",
            "Requests refused with 402 because a budget was used up, by scope.",
            ("scope",),
            registry=r,
        )

    # --- recording -----------------------------------------------------------------------

    def http_request(self, endpoint: str, method: str, status: int, duration_ms: float) -> None:
        self._http.labels(endpoint, method, str(status)).inc()
        self._http_seconds.labels(endpoint).observe(duration_ms / 1000.0)

    def decision(self, stage: str, arm: str) -> None:
        self._decisions.labels(stage, arm).inc()

    def escalation(self, to_arm: str) -> None:
        self._escalations.labels(to_arm).inc()

    def cut(self, arm: str, detector: str) -> None:
        self._cuts.labels(arm, detector).inc()

    def reward(self, stage: str, source: str, value: float) -> None:
        self._rewards.labels(stage, source).observe(value)

    def provider_call(self, arm: str, latency_ms: float, error_kind: str | None = None) -> None:
        """One provider call ended: ``error_kind`` (an error code) when it failed."""
        if error_kind is None:
            self._provider_seconds.labels(arm).observe(latency_ms / 1000.0)
        else:
            self._provider_errors.labels(arm, error_kind).inc()

    def budget_rejection(self, scope: str) -> None:
        self._budget_rejections.labels(scope).inc()

    def route(self, decisions: Sequence[DecisionTrace]) -> None:
        """Record what a routed request's trace shows: decisions, immediate rewards,
        escalations and cuts."""
        for decision in decisions:
            self.decision(decision.stage, decision.arm)
            if decision.reward is not None:
                self.reward(decision.stage, "immediate", decision.reward)
            if decision.stage == ESCALATION and decision.arm.startswith(ESCALATE_PREFIX):
                self.escalation(decision.arm.removeprefix(ESCALATE_PREFIX))
            if decision.outcome.startswith("cut"):
                self.cut(decision.arm, str(decision.details.get("detector", "unknown")))

    # --- live state ----------------------------------------------------------------------

    def watch(self, name: str, help_text: str, labels: Sequence[str], read: Reader) -> None:
        """Export a gauge whose samples ``read()`` gives at each scrape."""
        self.registry.register(_GaugeCollector(name, help_text, labels, read))

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


Reader = Callable[[], Iterable[tuple[Sequence[str], float]]]
"""Gives (label values, value) pairs of a gauge."""


class _GaugeCollector(Collector):
    def __init__(self, name: str, help_text: str, labels: Sequence[str], read: Reader) -> None:
        self._name = name
        self._help = help_text
        self._labels = list(labels)
        self._read = read

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(self._name, self._help, labels=self._labels)
        for values, value in self._read():
            gauge.add_metric(list(values), value)
        yield gauge

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._help, labels=self._labels)


def mapping_reader(read: Callable[[], Mapping[str, float]]) -> Reader:
    """A reader for a gauge with one label, from a function giving {label: value}."""

    def samples() -> Iterable[tuple[Sequence[str], float]]:
        return [((label,), value) for label, value in read().items()]

    return samples
