"""One monitored run of one arm: stream, feed the detectors, cut when one fires or it stalls.

The monitor always streams from the provider (also for non-streaming callers), so a run that
goes wrong is stopped early and costs only what it generated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from features.anomalies import Anomaly, Detector
from features.tool_calls import ToolArgumentsDetector
from router.pool import Arm
from router.providers import ChatRequest, Completion, Delta, Provider, ToolCallDelta
from router.providers.openai_compat import estimate_tokens

Clock = Callable[[], float]


@dataclass(frozen=True)
class Cut:
    """A run stopped on purpose: the anomaly, the text it had produced, its estimated cost."""

    anomaly: Anomaly
    text: str
    cost_usd: float
    latency_ms: float


RunEvent = Delta | ToolCallDelta | Completion | Cut


def estimated_cost(arm: Arm, request: ChatRequest, text: str) -> float:
    """List-price cost of a run stopped after ``text`` (no usage is reported for it)."""
    prompt_tokens = sum(estimate_tokens(str(m.get("content", ""))) for m in request.messages)
    return arm.price_usd(prompt_tokens, estimate_tokens(text))


async def monitored_run(
    provider: Provider,
    arm: Arm,
    request: ChatRequest,
    detectors: Sequence[Detector],
    *,
    stall_ms: float,
    clock: Clock = time.perf_counter,
    tool_arguments: ToolArgumentsDetector | None = None,
) -> AsyncIterator[RunEvent]:
    """Yield deltas, then the ``Completion`` or one ``Cut``; provider errors propagate.
    ``tool_arguments``, when given, watches the tool calls' argument pieces."""
    started = clock()
    stream = provider.stream(request)
    text = ""
    try:
        while True:
            try:
                # One timeout rescheduled per chunk: cheaper than a wait_for task per chunk.
                async with asyncio.timeout(stall_ms / 1000.0):
                    event = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                anomaly = Anomaly("stall", f"stall: no token for {stall_ms:g} ms")
                yield Cut(
                    anomaly,
                    text,
                    estimated_cost(arm, request, text),
                    (clock() - started) * 1000.0,
                )
                return
            if isinstance(event, Completion):
                yield event
                return
            if isinstance(event, ToolCallDelta):
                reason = None
                if tool_arguments is not None and event.arguments:
                    reason = tool_arguments.feed(event.index, event.arguments)
                if reason is not None:
                    yield Cut(
                        Anomaly(tool_arguments.name if tool_arguments else "", reason),
                        text,
                        estimated_cost(arm, request, text),
                        (clock() - started) * 1000.0,
                    )
                    return
                yield event
                continue
            text += event.text
            for detector in detectors:
                reason = detector.feed(event.text, text)
                if reason is not None:
                    yield Cut(
                        Anomaly(detector.name, reason),
                        text,
                        estimated_cost(arm, request, text),
                        (clock() - started) * 1000.0,
                    )
                    return
            yield event
    finally:
        await stream.aclose()
