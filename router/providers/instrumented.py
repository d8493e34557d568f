"""A provider that reports every call's latency or error to the service's metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable

from features.errors import ProviderError
from router.metrics import Metrics
from router.providers.base import ChatRequest, Completion, Provider, StreamEvent

Clock = Callable[[], float]


class InstrumentedProvider:
    """Wraps a provider: successful calls observe their latency, failed ones count by kind.

    A stream the caller stops early (a cut, a client gone) is neither: the provider did not
    fail, and the call has no full latency.
    """

    def __init__(
        self, provider: Provider, metrics: Metrics, *, clock: Clock = time.perf_counter
    ) -> None:
        self._provider = provider
        self._metrics = metrics
        self._clock = clock

    @property
    def arm_name(self) -> str:
        return self._provider.arm_name

    async def complete(self, request: ChatRequest) -> Completion:
        started = self._clock()
        try:
            completion = await self._provider.complete(request)
        except ProviderError as exc:
            self._metrics.provider_call(self.arm_name, self._elapsed_ms(started), exc.code)
            raise
        self._metrics.provider_call(self.arm_name, completion.latency_ms)
        return completion

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        started = self._clock()
        events = self._provider.stream(request)
        try:
            async for event in events:
                if isinstance(event, Completion):
                    self._metrics.provider_call(self.arm_name, event.latency_ms)
                yield event
        except ProviderError as exc:
            self._metrics.provider_call(self.arm_name, self._elapsed_ms(started), exc.code)
            raise
        finally:
            await events.aclose()

    def _elapsed_ms(self, started: float) -> float:
        return (self._clock() - started) * 1000.0
