"""A closed-loop HTTP load generator for ``/route-and-run`` (async httpx, loopback only).

``concurrency`` workers each send one routed request, wait for its answer, and send the
next, until ``duration_s`` has passed (requests in flight then are let finish). Every
``direct_every``-th request is followed by the same request sent straight to the replay
pool, to the model the router chose, so that router-added latency is the difference of two
latencies measured under the same load (as ``bench-overhead`` does).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

Clock = Callable[[], float]


@dataclass(frozen=True)
class LoadPlan:
    """What to send, where, how hard and for how long."""

    router_url: str
    replay_url: str
    prompts: tuple[str, ...]
    concurrency: int
    duration_s: float
    direct_every: int = 4
    """Pair every k-th request with a direct call to the replay pool (0: never)."""
    users: int = 0
    """Spread requests over this many ``user`` ids (0: send none)."""


@dataclass(frozen=True)
class SeenDecision:
    """A decision as the response's trace reported it."""

    decision_id: str
    stage: str
    reward: float | None


@dataclass(frozen=True)
class Routed:
    """One routed request as the client saw it. ``status`` is 0 for a transport error."""

    started_s: float
    ended_s: float
    status: int
    error: str | None = None
    request_id: str | None = None
    model: str | None = None
    decisions: tuple[SeenDecision, ...] = ()
    decision_ms: float | None = None
    direct_ms: float | None = None

    @property
    def latency_ms(self) -> float:
        return (self.ended_s - self.started_s) * 1000.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


def request_body(prompt: str, index: int, users: int) -> dict[str, Any]:
    """The ``/route-and-run`` body of the ``index``-th request."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}]}
    if users > 0:
        body["user"] = f"load-user-{index % users}"
    return body


def parse_routed(payload: Any) -> tuple[str, str, tuple[SeenDecision, ...], float | None]:
    """Request id, model, decisions and ``decision_ms`` of a 200 ``/route-and-run`` body.

    Raises ValueError when the body lacks them.
    """
    try:
        trace = payload["trace"]
        decisions = tuple(
            SeenDecision(str(d["decision_id"]), str(d["stage"]), d.get("reward"))
            for d in trace["decisions"]
        )
        decision_ms = trace.get("timings", {}).get("decision_ms")
        return str(payload["id"]), str(payload["model"]), decisions, decision_ms
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a 200 answer without {exc}") from None


async def drive(
    client: httpx.AsyncClient, plan: LoadPlan, *, clock: Clock = time.perf_counter
) -> list[Routed]:
    """Run the plan; every routed request's outcome, in completion order.

    Times are seconds since the run started, on ``clock``.
    """
    start = clock()
    deadline = start + plan.duration_s
    counter = itertools.count()
    results: list[Routed] = []

    async def direct(prompt: str, model: str) -> float | None:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        began = clock()
        try:
            response = await client.post(f"{plan.replay_url}/v1/chat/completions", json=body)
        except httpx.HTTPError:
            return None
        return (clock() - began) * 1000.0 if response.status_code == 200 else None

    async def one(index: int) -> Routed:
        prompt = plan.prompts[index % len(plan.prompts)]
        began = clock()
        try:
            response = await client.post(
                f"{plan.router_url}/route-and-run", json=request_body(prompt, index, plan.users)
            )
        except httpx.HTTPError as exc:
            return Routed(began - start, clock() - start, 0, f"{type(exc).__name__}: {exc}")
        ended = clock()
        if response.status_code != 200:
            return Routed(began - start, ended - start, response.status_code, response.text[:300])
        try:
            request_id, model, decisions, decision_ms = parse_routed(response.json())
        except ValueError as exc:
            return Routed(began - start, ended - start, 200, str(exc))
        direct_ms = None
        if plan.direct_every > 0 and index % plan.direct_every == 0:
            direct_ms = await direct(prompt, model)
        return Routed(
            began - start,
            ended - start,
            200,
            request_id=request_id,
            model=model,
            decisions=decisions,
            decision_ms=decision_ms,
            direct_ms=direct_ms,
        )

    async def worker() -> None:
        while clock() < deadline:
            results.append(await one(next(counter)))

    await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
    return results


def in_window(results: Sequence[Routed], from_s: float, to_s: float) -> list[Routed]:
    """The requests that both started and ended within [from_s, to_s]."""
    return [r for r in results if r.started_s >= from_s and r.ended_s <= to_s]
