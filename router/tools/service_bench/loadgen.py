"""A closed-loop HTTP load generator for ``/route-and-run`` (async httpx, loopback only).

``concurrency`` workers each send one routed request, wait for its answer, and send the
next, until ``duration_s`` has passed (requests in flight then are let finish). Every
``direct_every``-th request is followed by the same request sent straight to the replay
pool, to the model the router chose, so that router-added latency is the difference of two
latencies measured under the same load (as ``bench-overhead`` does).

``drive_proxy`` runs the same loop against a plain OpenAI-compatible proxy (LiteLLM): the
same prompts in the same order, each sent to the model the router chose for it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    index: int = -1
    """The request's place in the plan (its prompt is ``prompts[index % len(prompts)]``)."""

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


async def _closed_loop(
    concurrency: int,
    duration_s: float,
    one: Callable[[int, float], Awaitable[Routed]],
    clock: Clock,
) -> list[Routed]:
    """``concurrency`` workers each await ``one(index, start)`` for the next index until
    ``duration_s`` has passed; the outcomes in completion order."""
    start = clock()
    deadline = start + duration_s
    counter = itertools.count()
    results: list[Routed] = []

    async def worker() -> None:
        while clock() < deadline:
            results.append(await one(next(counter), start))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def _direct(
    client: httpx.AsyncClient, replay_url: str, prompt: str, model: str, clock: Clock
) -> float | None:
    """Milliseconds the replay pool took to answer this request itself (None: it failed)."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    began = clock()
    try:
        response = await client.post(f"{replay_url}/v1/chat/completions", json=body)
    except httpx.HTTPError:
        return None
    return (clock() - began) * 1000.0 if response.status_code == 200 else None


async def drive(
    client: httpx.AsyncClient, plan: LoadPlan, *, clock: Clock = time.perf_counter
) -> list[Routed]:
    """Run the plan against the router; every routed request's outcome, in completion order.

    Times are seconds since the run started, on ``clock``.
    """

    async def one(index: int, start: float) -> Routed:
        prompt = plan.prompts[index % len(plan.prompts)]
        posted = await _post(
            client,
            f"{plan.router_url}/route-and-run",
            request_body(prompt, index, plan.users),
            {},
            index,
            start,
            clock,
        )
        if isinstance(posted, Routed):
            return posted
        response, began, ended = posted
        try:
            request_id, model, decisions, decision_ms = parse_routed(response.json())
        except ValueError as exc:
            return Routed(began - start, ended - start, 200, str(exc), index=index)
        direct_ms = None
        if plan.direct_every > 0 and index % plan.direct_every == 0:
            direct_ms = await _direct(client, plan.replay_url, prompt, model, clock)
        return Routed(
            began - start,
            ended - start,
            200,
            request_id=request_id,
            model=model,
            decisions=decisions,
            decision_ms=decision_ms,
            direct_ms=direct_ms,
            index=index,
        )

    return await _closed_loop(plan.concurrency, plan.duration_s, one, clock)


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    index: int,
    start: float,
    clock: Clock,
) -> Routed | tuple[httpx.Response, float, float]:
    """POST one request of the plan: its 200 response with when it began and ended, or the
    failed request as a ``Routed`` (a transport error is status 0)."""
    began = clock()
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return Routed(
            began - start, clock() - start, 0, f"{type(exc).__name__}: {exc}", index=index
        )
    ended = clock()
    if response.status_code != 200:
        return Routed(
            began - start, ended - start, response.status_code, response.text[:300], index=index
        )
    return response, began, ended


def models_in_order(results: Sequence[Routed]) -> tuple[str, ...]:
    """The models the router chose, in the order of the requests' places in the plan."""
    return tuple(r.model for r in sorted(results, key=lambda r: r.index) if r.model is not None)


async def drive_proxy(
    client: httpx.AsyncClient,
    plan: LoadPlan,
    proxy_url: str,
    models: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    clock: Clock = time.perf_counter,
) -> list[Routed]:
    """Run the plan against an OpenAI-compatible proxy: the ``index``-th request carries the
    ``index``-th prompt and ``models[index % len(models)]`` (the router's choices, from
    ``models_in_order``). Every ``direct_every``-th request is paired with a direct call, as
    in ``drive``. ``request_id`` is the completion's id.

    Raises ValueError when ``models`` is empty.
    """
    if not models:
        raise ValueError("a proxy run needs at least one model")
    sent_headers = dict(headers or {})

    async def one(index: int, start: float) -> Routed:
        prompt = plan.prompts[index % len(plan.prompts)]
        model = models[index % len(models)]
        body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        posted = await _post(
            client, f"{proxy_url}/v1/chat/completions", body, sent_headers, index, start, clock
        )
        if isinstance(posted, Routed):
            return posted
        response, began, ended = posted
        try:
            completion_id = str(response.json()["id"])
        except (KeyError, TypeError, ValueError):
            return Routed(began - start, ended - start, 200, "a 200 answer without id", index=index)
        direct_ms = None
        if plan.direct_every > 0 and index % plan.direct_every == 0:
            direct_ms = await _direct(client, plan.replay_url, prompt, model, clock)
        return Routed(
            began - start,
            ended - start,
            200,
            request_id=completion_id,
            model=model,
            direct_ms=direct_ms,
            index=index,
        )

    return await _closed_loop(plan.concurrency, plan.duration_s, one, clock)


def in_window(results: Sequence[Routed], from_s: float, to_s: float) -> list[Routed]:
    """The requests that both started and ended within [from_s, to_s]."""
    return [r for r in results if r.started_s >= from_s and r.ended_s <= to_s]
