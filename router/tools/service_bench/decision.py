"""``signalroute bench-decision``: the in-process decision against the history index's size.

The service's own runtime (``router.runtime``: an embedded Postgres or ``SIGNALROUTE_DATABASE_URL``,
the demo pool, the configured embedder, policies and history index) answers decide-only
requests (``Router.decide``: the request logged, its signals, the history look-up, the
context, the draw, the journal handed to the writer) one after another in one process: no
HTTP, no model call, no other process between two requests. Once the runtime is up, the
process's garbage collection is set as ``signalroute serve`` sets it (``router.heap``).
``bench-overhead`` reports the same span (``decision_ms``) from a router serving HTTP beside
the replay pool, LiteLLM and the load generator; the difference is what the sockets and the
neighbours add.

The history index fills with the requests routed. At each of ``--sizes`` rows routed, the
next ``--n`` requests are timed. Each prompt is a RouterBench prompt with the request's
number appended, so no two are alike (the embedding hashes at least one new word pair).
Then, at the last size, ``--n`` requests are timed after each of ``--gaps``: the process
waits that long before each request, as a service between two requests does; the CPU's
caches and clock are then what the rest of the machine left them. The gaps take turns, in
rounds of ``GAP_ROUND`` requests, so that a drift of the machine over the run falls on all
of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from features.errors import ConfigError
from learner.reward import RewardWeights
from router.heap import settle_heap
from router.history_index import HistoryIndex
from router.lifecycle.request import RouteRequest
from router.pool import demo_pool
from router.routing import Router
from router.runtime import open_runtime
from router.settings import ReplaySettings, Settings
from router.tools.replay_pool.dataset import load_routerbench
from router.tools.service_bench.overhead import percentiles_json

GAP_ROUND = 25
"""Requests a gap is timed for before the next gap's turn."""

PARTS = ("decision_ms", "embed_ms", "query_signals_ms", "history_ms", "context_ms", "draw_ms")
"""The timings a decision reports (``Decided.timings``), the whole first."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/decision"), help="report folder")
    parser.add_argument(
        "--sizes",
        default="300,1000,2000,4096,6000",
        help="requests routed before each timed block (the index holds the newest "
        "SIGNALROUTE_HISTORY_INDEX_ROWS of them)",
    )
    parser.add_argument("--n", type=int, default=400, help="requests timed at each size")
    parser.add_argument(
        "--gaps",
        default="0,2,10,30",
        help="idle milliseconds before each request, timed at the last size (empty: none)",
    )


def sizes_of(text: str) -> tuple[int, ...]:
    """``--sizes`` as increasing non-negative integers; ValueError saying what is wrong."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--sizes takes comma-separated integers, got {text!r}") from None
    if any(size < 0 for size in sizes) or list(sizes) != sorted(set(sizes)):
        raise ValueError(f"--sizes must be distinct, increasing and >= 0, got {text!r}")
    return sizes


def gaps_of(text: str) -> tuple[float, ...]:
    """``--gaps`` as non-negative milliseconds (none for an empty text); ValueError saying
    what is wrong."""
    if not text.strip():
        return ()
    try:
        gaps = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--gaps takes comma-separated milliseconds, got {text!r}") from None
    if any(not gap >= 0 for gap in gaps):
        raise ValueError(f"--gaps must be >= 0, got {text!r}")
    return gaps


async def measure(
    settings: Settings,
    prompts: Sequence[str],
    sizes: Sequence[int],
    n: int,
    gaps_ms: Sequence[float] = (),
    *,
    owns_process: bool = False,
) -> dict[str, Any]:
    """Route decide-only requests on the service's runtime and time ``n`` of them after each
    of ``sizes`` requests (the report's ``blocks``), then ``n`` after each idle gap of
    ``gaps_ms`` before every request (``gaps``). ``owns_process``: this process is the
    benchmark's alone, so its garbage collection is set up as a serving process's is
    (``router.heap``)."""
    if not prompts:
        raise ValueError("no prompts to route")
    async with open_runtime(settings, demo_pool()) as runtime:
        if owns_process:  # as the serving process does once it is up
            settle_heap(settings.gc_young_threshold)
        router, index = runtime.router, runtime.history_index
        routed = 0

        async def timed(timings: dict[str, list[float]], count: int, gap_s: float = 0.0) -> None:
            """Time ``count`` requests into ``timings``, each after ``gap_s`` idle."""
            nonlocal routed
            for _ in range(count):
                if gap_s > 0:
                    await asyncio.sleep(gap_s)
                for part, value in (await _decide(router, prompts, routed)).items():
                    if part in timings:
                        timings[part].append(value)
                routed += 1
                progress.update()

        blocks: list[dict[str, Any]] = []
        gaps: list[dict[str, Any]] = []
        total = sizes[-1] + n * (len(sizes) + len(gaps_ms))
        with tqdm(total=total, desc="deciding", unit="req") as progress:
            for size in sizes:
                while routed < size:
                    await _decide(router, prompts, routed)
                    routed += 1
                    progress.update()
                held = index.size if index is not None else None
                timings = _no_timings()
                await timed(timings, n)
                blocks.append(_block(size, held, index, timings))
            by_gap = [_no_timings() for _ in gaps_ms]
            for start in range(0, n, GAP_ROUND):  # the gaps take turns
                for gap_ms, timings in zip(gaps_ms, by_gap, strict=True):
                    await timed(timings, min(GAP_ROUND, n - start), gap_ms / 1000.0)
            for gap_ms, timings in zip(gaps_ms, by_gap, strict=True):
                gaps.append(
                    {"gap_ms": gap_ms, **{part: percentiles_json(timings[part]) for part in PARTS}}
                )
    return {
        "n": n,
        "history_index_rows": settings.history_index_rows,
        "blocks": blocks,
        "gaps": gaps,
    }


def _no_timings() -> dict[str, list[float]]:
    return {part: [] for part in PARTS}


async def _decide(router: Router, prompts: Sequence[str], number: int) -> Mapping[str, float]:
    """Decide one request, then give the event loop a turn: a decision that needs nothing
    from the store never suspends, and without the turn the journal writer (a task on the
    same loop, as in the service, where a request's network I/O gives it its turns) would
    not run until the end, its queue growing with every request."""
    content = f"{prompts[number % len(prompts)]} (request {number})"
    request = RouteRequest(
        messages=({"role": "user", "content": content},), weights=RewardWeights()
    )
    timings = (await router.decide(request)).timings
    await asyncio.sleep(0)
    return timings


def _block(
    size: int, held: int | None, index: HistoryIndex | None, timings: Mapping[str, list[float]]
) -> dict[str, Any]:
    return {
        "routed_before": size,
        "index_rows": held,
        "index_capacity": index.capacity if index is not None else None,
        **{part: percentiles_json(values) for part, values in timings.items()},
    }


def markdown(report: Mapping[str, Any]) -> str:
    lines = [
        "# The in-process decision against the history index's size",
        "",
        f"{report['n']} decide-only requests timed at each size, one after another; "
        "p50 / p99 in ms.",
        "",
        *_table(
            ("routed before", "index rows"),
            [
                (
                    str(b["routed_before"]),
                    "-" if b["index_rows"] is None else str(b["index_rows"]),
                    b,
                )
                for b in report["blocks"]
            ],
        ),
    ]
    if report["gaps"]:
        lines += [
            "",
            "At the last size, each request after an idle gap (p50 / p99 in ms):",
            "",
            *_table(("idle gap (ms)",), [(f"{g['gap_ms']:g}", g) for g in report["gaps"]]),
        ]
    return "\n".join(lines) + "\n"


def _table(keys: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table: the ``keys`` columns, then one column per part; each row its key
    cells and, last, the figures by part."""
    parts = " | ".join(part.removesuffix("_ms") for part in PARTS)
    lines = [f"| {' | '.join(keys)} | {parts} |", "|" + "---:|" * (len(keys) + len(PARTS))]
    for *cells, figures in rows:
        lines.append(f"| {' | '.join([*cells, *(_cell(figures[p]) for p in PARTS)])} |")
    return lines


def _cell(figures: Mapping[str, float] | None) -> str:
    return f"{figures['p50']:.3f} / {figures['p99']:.3f}" if figures else "-"


def run(args: argparse.Namespace) -> int:
    """Raises ConfigError for a bad option or missing RouterBench data."""
    try:
        sizes, gaps = sizes_of(args.sizes), gaps_of(args.gaps)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    prompts = [record.prompt for record in load_routerbench(ReplaySettings().data_path())]
    with tempfile.TemporaryDirectory(prefix="signalroute-decision-") as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        report = asyncio.run(measure(settings, prompts, sizes, args.n, gaps, owns_process=True))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decision.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "decision.md").write_text(text)
    print(text)
    print(f"report {args.out / 'decision.md'} and decision.json")
    return 0
