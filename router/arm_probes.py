"""Asking each arm whether it answers: a one-token request (``signalroute check --probe``) and
a cheap reachability look (``/readyz``).

A one-token chat completion proves the whole path (address, key, model id) but costs a call,
so only the operator's ``check --probe`` sends it. Readiness only needs to know whether the
provider's address answers at all: ``ArmReachability`` asks ``GET {base_url}/models`` and
counts any HTTP answer, even a 401 or a 404, as reachable; a refused connection, a failed name
look-up or a time-out is not. Results are kept for ``ttl_s`` so that a readiness probe polled
every second does not turn into a request to every provider every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from features.errors import ProviderError
from router.pool import Arm
from router.providers import ChatRequest, Provider

Clock = Callable[[], float]

PROBE_REQUEST = ChatRequest(
    messages=({"role": "user", "content": "Reply with the single word: ok"},),
    max_tokens=1,
    temperature=0.0,
)
"""What ``check --probe`` sends each arm: one token, so it costs next to nothing."""


@dataclass(frozen=True)
class ProbeResult:
    """How an arm answered the probe: ``detail`` is its text when ``ok``, else why not."""

    arm: str
    ok: bool
    detail: str
    latency_ms: float


async def probe_arm(provider: Provider, *, clock: Clock = time.perf_counter) -> ProbeResult:
    """Send ``PROBE_REQUEST`` to ``provider``; a provider failure is a result, not an error."""
    started = clock()
    try:
        completion = await provider.complete(PROBE_REQUEST)
    except ProviderError as exc:
        return ProbeResult(provider.arm_name, False, exc.message, (clock() - started) * 1000.0)
    return ProbeResult(provider.arm_name, True, repr(completion.text), (clock() - started) * 1000.0)


async def probe_arms(providers: Sequence[Provider]) -> list[ProbeResult]:
    """Probe every provider at once; results in the providers' order."""
    return list(await asyncio.gather(*(probe_arm(p) for p in providers)))


class ArmReachability:
    """Which arms' providers do not answer at their address, and why (arms that share a
    base URL share one look).

    The first question waits for a look at every arm (the service listens by then, so an arm
    served by the router itself answers). Later answers come from the last look; once it is
    older than ``ttl_s``, the next question starts a new look in the background, so a
    readiness probe never waits longer than the first time.
    """

    def __init__(
        self,
        arms: Sequence[Arm],
        http: httpx.AsyncClient,
        *,
        ttl_s: float,
        timeout_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._arms = tuple(arms)
        self._http = http
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._checked_at: float | None = None
        self._unreachable: dict[str, str] = {}
        self._first = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    async def unreachable(self) -> Mapping[str, str]:
        """Arm name to the reason it cannot be reached (absent: reachable)."""
        if self._checked_at is None:
            async with self._first:
                if self._checked_at is None:
                    await self._check()
        elif self._clock() - self._checked_at >= self._ttl_s and (
            self._refresh is None or self._refresh.done()
        ):
            self._refresh = asyncio.create_task(self._check())
        return dict(self._unreachable)

    async def close(self) -> None:
        """Stop a look still running (at shutdown)."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    async def _check(self) -> None:
        addresses = list(dict.fromkeys(arm.base_url for arm in self._arms))  # one look each
        results = await asyncio.gather(*(self._look(address) for address in addresses))
        reasons = dict(zip(addresses, results, strict=True))
        self._unreachable = {
            arm.name: reason for arm in self._arms if (reason := reasons[arm.base_url]) is not None
        }
        self._checked_at = self._clock()

    async def _look(self, base_url: str) -> str | None:
        url = f"{base_url}/models"
        try:
            await self._http.get(url, timeout=self._timeout_s)
        except httpx.TimeoutException:
            return f"unreachable: no answer from {url} within {self._timeout_s:g} s"
        except httpx.HTTPError as exc:
            return f"unreachable: {type(exc).__name__} at {url}: {exc}"
        return None
