"""``signalroute bench-overhead``: what routing adds to a call, measured over real HTTP.

Three processes on loopback: the replay pool (recorded answers, no model latency), the
router pointed at it, and optionally LiteLLM's proxy pointed at the same pool. For each
RouterBench prompt, in one interleaved run:

1. the router routes it (``/route-and-run``: signals, pgvector kNN, VW draw, logging,
   streamed generation through the in-generation detectors); its trace reports the
   in-process decision time (request in, first model call out);
2. the same request goes straight to the replay pool, to the model the router chose;
3. and, when LiteLLM runs, through LiteLLM's proxy to that model.

HTTP-added latency is router latency minus direct latency of the same request. The run is
repeated at ``--concurrency`` requests in flight. Post-generation stages (judge, escalation,
component repair) are off: they are extra model calls, not overhead.

The router starts with an empty store, so the first requests' look-ups search a history
index of a few rows. ``--history N`` routes N other prompts through it first (not timed,
``HISTORY_CONCURRENCY`` in flight), as a service that has run a while has a full index (it
holds ``SIGNALROUTE_HISTORY_INDEX_ROWS``, 4,096 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tqdm import tqdm

from features.errors import ConfigError
from router.settings import ReplaySettings
from router.tools.replay_pool.dataset import load_routerbench
from router.tools.service_bench.litellm_proxy import maybe_litellm
from router.tools.service_bench.litellm_proxy import version as litellm_version
from router.tools.service_bench.processes import (
    IDLE_CONNECTION_S,
    benchmark_environment,
    free_port,
    run_fast,
    server_process,
)

POOL_TEMPLATE = """
arms:
{arms}
stages: {{escalation: false, components: false, judge: never}}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/overhead"), help="report folder")
    parser.add_argument("--n", type=int, default=300, help="sequential requests per target")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument(
        "--concurrent-n",
        type=int,
        default=1000,
        help="requests per target at concurrency (0: no concurrent run)",
    )
    parser.add_argument(
        "--litellm",
        type=Path,
        default=None,
        help="path of LiteLLM's `litellm` proxy executable (pip install 'litellm[proxy]'); "
        "omitted: LiteLLM is not measured",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="requests routed before the timed ones, not timed, so the history index holds "
        "them (4096 fills the default index)",
    )
    parser.add_argument("--seed", type=int, default=0)


HISTORY_CONCURRENCY = 8
"""Requests in flight while ``--history`` fills the store and the history index."""


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p99: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        array = np.asarray(values, dtype=float)
        return cls(float(np.percentile(array, 50)), float(np.percentile(array, 99)), len(array))

    def as_json(self) -> dict[str, float]:
        return {"p50": round(self.p50, 3), "p99": round(self.p99, 3), "n": self.n}


def percentiles_json(values: Sequence[float]) -> dict[str, float] | None:
    """``Percentiles.of(values)`` as JSON; None when there are none (every request failed)."""
    return Percentiles.of(values).as_json() if values else None


def pool_yaml(models: Sequence[str], replay_url: str) -> str:
    lines = [
        f'  - {{name: "{m}", base_url: "{replay_url}/v1", model: "{m}", context_window: 128000}}'
        for m in models
    ]
    return POOL_TEMPLATE.format(arms="\n".join(lines))


DECISION_PARTS = ("embed_ms", "query_signals_ms", "history_ms", "context_ms", "draw_ms")
"""The parts of ``decision_ms`` the router's trace reports (first pre-generation draw):
``history_ms`` runs from sending the kNN look-up to its summary, with the query signals,
the eligibility check and the request's log parameters computed meanwhile."""


@dataclass(frozen=True)
class Sample:
    decision_ms: float
    router_ms: float
    direct_ms: float
    litellm_ms: float | None
    litellm_error: str | None = None
    parts_ms: Mapping[str, float] = field(default_factory=dict)
    neighbours: int = 0
    """The neighbours the decision's history look-up found."""


async def _timed_post(
    client: httpx.AsyncClient,
    target: str,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> tuple[float, Any]:
    started = time.perf_counter()
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:  # say which target failed
        raise ConfigError(f"{target} ({url}): {type(exc).__name__}: {exc}") from exc
    elapsed = (time.perf_counter() - started) * 1000.0
    if response.status_code != 200:
        raise ConfigError(
            f"{target} ({url}) answered {response.status_code}: {response.text[:200]}"
        )
    return elapsed, response.json()


async def _one(
    client: httpx.AsyncClient,
    prompt: str,
    router_url: str,
    replay_url: str,
    litellm_url: str | None,
    litellm_key: str,
) -> Sample:
    messages = [{"role": "user", "content": prompt}]
    router_ms, routed = await _timed_post(
        client, "signalroute", f"{router_url}/route-and-run", {"messages": messages}
    )
    model = routed["model"]
    body = {"model": model, "messages": messages}
    direct_ms, _ = await _timed_post(
        client, "replay pool", f"{replay_url}/v1/chat/completions", body
    )
    litellm_ms, litellm_error = None, None
    if litellm_url is not None:  # the reference failing costs signalroute's sample nothing
        try:
            litellm_ms, _ = await _timed_post(
                client,
                "LiteLLM",
                f"{litellm_url}/v1/chat/completions",
                body,
                headers={"authorization": f"Bearer {litellm_key}"},
            )
        except ConfigError as exc:
            litellm_error = f"ConfigError: {exc}"[:200]
    timings = routed["trace"]["timings"]
    decisions = routed["trace"].get("decisions") or [{}]
    historical = decisions[0].get("signals", {}).get("historical", {})
    return Sample(
        neighbours=round(math.expm1(float(historical.get("neighbours", 0.0)))),
        decision_ms=float(timings["decision_ms"]),
        parts_ms={part: float(timings[part]) for part in DECISION_PARTS if part in timings},
        router_ms=router_ms,
        direct_ms=direct_ms,
        litellm_ms=litellm_ms,
        litellm_error=litellm_error,
    )


async def _run_phase(
    prompts: Sequence[str],
    concurrency: int,
    router_url: str,
    replay_url: str,
    litellm_url: str | None,
    litellm_key: str,
) -> tuple[list[Sample], float, list[str]]:
    limits = httpx.Limits(
        max_connections=concurrency * 3,
        max_keepalive_connections=concurrency * 3,
        keepalive_expiry=IDLE_CONNECTION_S,
    )
    samples: list[Sample] = []
    errors: list[str] = []
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def guarded(prompt: str) -> None:
            async with semaphore:
                try:
                    samples.append(
                        await _one(client, prompt, router_url, replay_url, litellm_url, litellm_key)
                    )
                except (httpx.HTTPError, ConfigError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])

        started = time.perf_counter()
        await asyncio.gather(*(guarded(p) for p in prompts))
        elapsed_s = time.perf_counter() - started
    return samples, elapsed_s, errors


def history_prompts(shuffled: Sequence[str], skip: int, count: int) -> list[str]:
    """``count`` prompts from ``shuffled`` past its first ``skip`` (the timed ones), over
    again when they run out, then with a suffix that makes each new."""
    rest = list(shuffled[skip:]) or list(shuffled)
    return [
        rest[i % len(rest)] + (f" (again, {i})" if i >= len(rest) else "") for i in range(count)
    ]


async def _fill_history(prompts: Sequence[str], router_url: str) -> int:
    """Route ``prompts`` (``HISTORY_CONCURRENCY`` in flight, a progress bar); return how
    many failed."""
    semaphore = asyncio.Semaphore(HISTORY_CONCURRENCY)
    failed = 0
    async with httpx.AsyncClient(timeout=120) as client:
        with tqdm(total=len(prompts), desc="history", unit="req") as progress:

            async def route(prompt: str) -> None:
                nonlocal failed
                async with semaphore:
                    body = {"messages": [{"role": "user", "content": prompt}]}
                    try:
                        response = await client.post(f"{router_url}/route-and-run", json=body)
                        failed += response.status_code != 200
                    except httpx.HTTPError:
                        failed += 1
                    progress.update()

            await asyncio.gather(*(route(p) for p in prompts))
    return failed


def _summary(
    samples: Sequence[Sample], elapsed_s: float, concurrency: int, errors: Sequence[str]
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": len(samples),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
        "decision_ms": percentiles_json([s.decision_ms for s in samples]),
        "decision_parts_p50_ms": {
            part: round(float(np.median(values)), 3)
            for part in DECISION_PARTS
            if (values := [s.parts_ms[part] for s in samples if part in s.parts_ms])
        },
        "router_ms": percentiles_json([s.router_ms for s in samples]),
        "direct_ms": percentiles_json([s.direct_ms for s in samples]),
        "http_added_ms": percentiles_json([s.router_ms - s.direct_ms for s in samples]),
        "routed_per_s": round(len(samples) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "neighbours_p50": float(np.median([s.neighbours for s in samples])) if samples else None,
    }
    litellm = [s for s in samples if s.litellm_ms is not None]
    litellm_errors = [s.litellm_error for s in samples if s.litellm_error is not None]
    if litellm_errors:
        summary["litellm_errors"] = len(litellm_errors)
        summary["litellm_error_examples"] = sorted(set(litellm_errors))[:3]
    if litellm and summary["http_added_ms"] is not None:
        summary["litellm_added_ms"] = percentiles_json(
            [(s.litellm_ms or 0.0) - s.direct_ms for s in litellm]
        )
        summary["ratio_p50"] = round(
            summary["http_added_ms"]["p50"] / max(summary["litellm_added_ms"]["p50"], 1e-9), 3
        )
    return summary


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; write ``overhead.json`` and ``overhead.md`` under ``--out``.

    Raises ConfigError for a count below its minimum (``--n`` and ``--concurrency`` 1,
    ``--concurrent-n`` 0) and for more prompts than the dataset holds."""
    for flag, value, least in (
        ("--n", args.n, 1),
        ("--concurrency", args.concurrency, 1),
        ("--concurrent-n", args.concurrent_n, 0),
        ("--history", args.history, 0),
    ):
        if value < least:
            raise ConfigError(f"{flag} must be at least {least}, got {value}")
    data = ReplaySettings().data_path()
    dataset = load_routerbench(data)
    rng = np.random.default_rng(args.seed)
    prompts = [r.prompt for r in dataset]
    for flag, value in (("--n", args.n), ("--concurrent-n", args.concurrent_n)):
        if value > len(prompts):
            raise ConfigError(f"{flag} is {value}, but the dataset holds {len(prompts)} prompts")
    order = rng.permutation(len(prompts))
    sequential = [prompts[i] for i in order[: args.n]]
    concurrent = [prompts[i] for i in order[: args.concurrent_n]]
    history = history_prompts(
        [prompts[i] for i in order], max(args.n, args.concurrent_n), args.history
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="signalroute-overhead-"))
    replay_port, router_port = free_port(), free_port()
    replay_url = f"http://127.0.0.1:{replay_port}"
    router_url = f"http://127.0.0.1:{router_port}"
    env = benchmark_environment(args.seed, data, SIGNALROUTE_DATA_DIR=str(work / "data"))
    (work / "pool.yaml").write_text(pool_yaml(dataset.models, replay_url))
    me = [sys.executable, "-m", "router.cli"]
    with (
        server_process(
            [*me, "replay-pool", "--port", str(replay_port)],
            env,
            work / "replay.log",
            f"{replay_url}/healthz",
        ),
        server_process(
            [*me, "serve", "--port", str(router_port), "--config", str(work / "pool.yaml")],
            env,
            work / "router.log",
            f"{router_url}/readyz",
        ),
        maybe_litellm(args.litellm, dataset.models, replay_url, work) as litellm,
    ):
        litellm_url = litellm.url if litellm is not None else None
        litellm_key = litellm.key if litellm is not None else ""
        results: dict[str, Any] = {"litellm_version": litellm_version(args.litellm)}
        if history:
            print(f"history: {len(history)} requests routed first, not timed")
            failed = run_fast(_fill_history(history, router_url))
            results["history"] = {"requests": len(history), "errors": failed}
            time.sleep(1.0)  # the index takes them in as they end; a refresh for the rest
        print(f"sequential: {len(sequential)} prompts x {2 + bool(litellm_url)} targets")
        samples, elapsed, errors = run_fast(
            _run_phase(sequential, 1, router_url, replay_url, litellm_url, litellm_key)
        )
        results["sequential"] = _summary(samples, elapsed, 1, errors)
        if concurrent:
            print(f"concurrent: {len(concurrent)} prompts at {args.concurrency} in flight")
            samples, elapsed, errors = run_fast(
                _run_phase(
                    concurrent, args.concurrency, router_url, replay_url, litellm_url, litellm_key
                )
            )
            results["concurrent"] = _summary(samples, elapsed, args.concurrency, errors)
    report = {
        "decision_ms": results["sequential"]["decision_ms"],
        "http_added_ms": results["sequential"]["http_added_ms"],
        "litellm_added_ms": results["sequential"].get("litellm_added_ms"),
        "concurrency": args.concurrency if concurrent else None,  # None: no concurrent run
        **results,
    }
    (out / "overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "overhead.md").write_text(markdown(report))
    print(markdown(report))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def markdown(report: dict[str, Any]) -> str:
    rows = [
        "| run | decision p50/p99 (ms) | added by signalroute p50/p99 (ms) | "
        "added by LiteLLM p50/p99 (ms) | routed req/s | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("sequential", "concurrent"):
        result = report.get(name)
        if result is None:  # not run
            continue
        litellm = result.get("litellm_added_ms")
        rows.append(
            f"| {name} (c={result['concurrency']}) | {_cell(result['decision_ms'])} | "
            f"{_cell(result['http_added_ms'])} | "
            + (_cell(litellm) if litellm else "not run")
            + f" | {result['routed_per_s']} | {_errors(result)} |"
        )
    history = report.get("history")
    if history:
        rows += [
            "",
            f"Routed first, not timed: {history['requests']} requests "
            f"({history['errors']} failed), so the history index held them.",
        ]
    neighbours = (report.get("sequential") or {}).get("neighbours_p50")
    if neighbours is not None:
        rows += ["", f"Sequential look-ups found {neighbours:g} neighbours (p50)."]
    parts = (report.get("sequential") or {}).get("decision_parts_p50_ms")
    if parts:
        rows += [
            "",
            "Sequential decision in parts, p50 (ms): "
            + ", ".join(f"{name.removesuffix('_ms')} {value:.2f}" for name, value in parts.items()),
        ]
    return "\n".join(rows) + "\n"


def _errors(result: dict[str, Any]) -> str:
    litellm = result.get("litellm_errors")
    return f"{result['errors']} (LiteLLM: {litellm})" if litellm else str(result["errors"])


def _cell(percentiles: dict[str, float] | None) -> str:
    if percentiles is None:
        return "n/a (no request succeeded)"
    return f"{percentiles['p50']:.2f} / {percentiles['p99']:.2f}"
